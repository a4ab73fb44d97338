"""A pushing planner for Push-T: it tries candidate pushes on a copy of the simulator and returns the targets of the
one that leaves the T closest to the goal pose. Used by `sscp.data.pusht_demos`; needs the `pusht` extra.

A push is a contact point on the T's outline with its outward normal, a direction (the inward normal turned by up
to PUSH_TURN) and a length: the agent's target goes round the T at a safe distance when the straight way would hit
it, waits at a stand-off point on the normal, then moves through the contact point by the length, and rests. Every
candidate is simulated in `PushSim` (the same pymunk arena and PD control as gym-pusht, without its contact
counting) from the real simulator's state; the candidates of one contact point share the simulated approach. The
cost is the mean distance (pixels) between the T's outline vertices and the goal's, so angle errors count by their
lever arm.

Contact points are grouped by the side of the T they lie on (`SIDES`, in the T's own frame): the demonstrator
makes an episode's first push from one side drawn at random, which makes its demonstrations multimodal.
"""

from dataclasses import dataclass

import numpy as np

GOAL_POSE = np.array([256.0, 256.0, np.pi / 4])
"""gym-pusht's goal: the T's body origin (x, y) and angle, as in the observation."""
OUTLINE = np.array([[-60, 0], [60, 0], [60, 30], [15, 30], [15, 120], [-15, 120], [-15, 30], [-60, 30]], float)
"""The T's outline vertices in its body frame (gym-pusht's `add_tee` with scale 30), in order round the outline."""
AGENT_RADIUS = 15.0
CENTRE = np.array([0.0, 45.0])
"""The T's centre of gravity in its body frame; the agent goes round the T on a circle about it."""
DETOUR_RADIUS = 105.0
"""Radius (pixels) of the circle the agent's target follows round the T: clear of it with the agent's radius."""
STANDOFF = 22.0
"""How far (pixels, beyond touching) from the contact point the agent waits before a push."""
PUSH_TURN = (-0.35, 0.0, 0.35)
"""Turns (radians) of a push's direction from the inward normal: within the contact's friction cone (μ = 1)."""
PUSH_LENGTHS = (3.0, 8.0, 18.0, 35.0, 60.0)
"""How far (pixels) the target moves past the contact point; the short ones make the final corrections."""
SIDES = {"bar": (0,), "stem": (2, 4, 6), "right": (1, 3), "left": (5, 7)}
"""The sides of the T by the edges of OUTLINE they hold (edge i runs from vertex i to i + 1): the crossbar's outer
face, the stem's end with the crossbar's underside, and each flank."""
EDGE_POINTS = {0: (0.1, 0.3, 0.5, 0.7, 0.9), 3: (0.2, 0.5, 0.8), 5: (0.2, 0.5, 0.8)}
"""Where along each edge (fractions) pushes are tried; the edges not named get their midpoint."""
PD_GAINS, DT, SUBSTEPS = (100.0, 20.0), 0.01, 10
"""gym-pusht's PD control of the agent and its physics steps per env step."""


def _rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def to_world(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Returns points of the T's body frame in the arena's frame for the T at pose (x, y, angle)."""
    return pose[:2] + points @ _rotation(pose[2]).T


GOAL_OUTLINE = to_world(GOAL_POSE, OUTLINE)


def pose_error(pose: np.ndarray) -> float:
    """Returns the mean distance (pixels) between the T's outline vertices at pose and at the goal."""
    return float(np.linalg.norm(to_world(pose, OUTLINE) - GOAL_OUTLINE, axis=1).mean())


@dataclass(frozen=True)
class Contact:
    """A point on the T's outline (body frame), its outward normal and the side of the T it lies on."""

    point: np.ndarray
    normal: np.ndarray
    side: str


def contacts() -> list[Contact]:
    """Returns the contact points pushes are tried at, from every side of the T."""
    side_of = {edge: side for side, edges in SIDES.items() for edge in edges}
    found = []
    for edge, start in enumerate(OUTLINE):
        end = OUTLINE[(edge + 1) % len(OUTLINE)]
        along = (end - start) / np.linalg.norm(end - start)
        normal = np.array([along[1], -along[0]])  # the outline runs clockwise, so this points outwards
        for fraction in EDGE_POINTS.get(edge, (0.5,)):
            found.append(Contact(start + fraction * (end - start), normal, side_of[edge]))
    return found


class PushSim:
    """gym-pusht's arena in a pymunk space of its own (walls, the kinematic agent under PD control, the T), whose
    state is set, stepped with agent targets and read back."""

    def __init__(self):
        import pymunk
        from gym_pusht.envs import PushTEnv as Simulator

        self.space = pymunk.Space()
        self.space.gravity = 0, 0
        self.space.damping = 0.0  # as gym-pusht: the T stops as soon as nothing pushes it
        walls = [((5, 506), (5, 5)), ((5, 5), (506, 5)), ((506, 5), (506, 506)), ((5, 506), (506, 506))]
        self.space.add(*(Simulator.add_segment(self.space, a, b, 2) for a, b in walls))
        self.agent = Simulator.add_circle(self.space, (256, 400), AGENT_RADIUS)
        self.block, _ = Simulator.add_tee(self.space, (256, 300), 0)

    def set_state(self, state: tuple) -> None:
        """Sets the state (agent x, y, vx, vy, T x, y, angle), as `state_of` returns it."""
        ax, ay, vx, vy, bx, by, angle = state
        self.agent.position, self.agent.velocity = (ax, ay), (vx, vy)
        self.block.angle = angle  # the angle first: setting it turns the T about its centre of gravity
        self.block.position = (bx, by)
        self.block.velocity, self.block.angular_velocity = (0.0, 0.0), 0.0

    def state(self) -> tuple:
        """Returns the state (agent x, y, vx, vy, T x, y, angle)."""
        return state_of(self.agent, self.block)

    def pose(self) -> np.ndarray:
        """Returns the T's pose (x, y, angle)."""
        return np.array([*self.block.position, self.block.angle])

    def run(self, targets: np.ndarray) -> None:
        """Steps the arena through the agent's targets (K, 2), one env step (SUBSTEPS physics steps) each."""
        kp, kv = PD_GAINS
        (px, py), (vx, vy) = self.agent.position, self.agent.velocity
        for tx, ty in targets:
            for _ in range(SUBSTEPS):  # the agent is kinematic: contacts never change its path, so it is tracked here
                vx += (kp * (tx - px) - kv * vx) * DT
                vy += (kp * (ty - py) - kv * vy) * DT
                self.agent.velocity = vx, vy
                self.space.step(DT)
                px, py = px + vx * DT, py + vy * DT


def state_of(agent, block) -> tuple:
    """Returns the planning state (agent x, y, vx, vy, T x, y, angle) of pymunk bodies (a PushSim's or gym-pusht's)."""
    return (*agent.position, *agent.velocity, *block.position, block.angle)


def _path(start: np.ndarray, end: np.ndarray, speed: float) -> np.ndarray:
    """Returns targets from start (excluded) to end (included) spaced at most `speed` pixels apart."""
    count = max(1, int(np.ceil(np.linalg.norm(end - start) / speed)))
    return start + np.outer(np.arange(1, count + 1) / count, end - start)


def _clear(start: np.ndarray, end: np.ndarray, pose: np.ndarray) -> bool:
    """Returns whether the agent moving in a straight line from start to end stays clear of the T at pose."""
    samples = start + np.outer(np.linspace(0.0, 1.0, 12), end - start)
    local = (samples - pose[:2]) @ _rotation(pose[2])  # into the T's frame
    bar = np.maximum(np.abs(local - [0.0, 15.0]) - [60.0, 15.0], 0.0)
    stem = np.maximum(np.abs(local - [0.0, 75.0]) - [15.0, 45.0], 0.0)
    gap = np.minimum(np.linalg.norm(bar, axis=1), np.linalg.norm(stem, axis=1))
    return bool(gap.min() > AGENT_RADIUS + 4.0)


def approach(agent: np.ndarray, pose: np.ndarray, contact: Contact, speed: float, wait: int) -> np.ndarray:
    """Returns the agent's targets from its position to the stand-off point of `contact` (T at pose), round the T on
    the detour circle when the straight way would touch it, then `wait` steps there."""
    normal = _rotation(pose[2]) @ contact.normal
    standoff = to_world(pose, contact.point[None])[0] + normal * (AGENT_RADIUS + STANDOFF)
    centre = to_world(pose, CENTRE[None])[0]
    legs = []
    if not _clear(agent, standoff, pose):
        outward = standoff - centre
        entry = centre + outward / np.linalg.norm(outward) * max(DETOUR_RADIUS, np.linalg.norm(outward))
        start_angle = np.arctan2(*(agent - centre)[::-1])
        turn = (np.arctan2(*outward[::-1]) - start_angle + np.pi) % (2 * np.pi) - np.pi  # the shorter way round
        radius = max(DETOUR_RADIUS, float(np.linalg.norm(agent - centre)))
        arc = np.linspace(0.0, 1.0, max(2, int(abs(turn) * radius / speed) + 1))[1:]
        angles = start_angle + turn * arc
        legs.append(centre + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1))
        legs.append(_path(legs[-1][-1], entry, speed))
    start = legs[-1][-1] if legs else agent
    legs.append(_path(start, standoff, speed))
    legs.append(np.repeat(standoff[None], wait, axis=0))
    return np.clip(np.concatenate(legs), 0.0, 512.0)


def push(pose: np.ndarray, contact: Contact, turn: float, length: float, speed: float, rest: int) -> np.ndarray:
    """Returns the agent's targets of a push at `contact` (T at pose, agent at its stand-off point): through the
    contact point along the inward normal turned by `turn`, `length` pixels past it, then `rest` steps still."""
    normal = _rotation(pose[2]) @ contact.normal
    standoff = to_world(pose, contact.point[None])[0] + normal * (AGENT_RADIUS + STANDOFF)
    end = standoff - _rotation(turn) @ normal * (STANDOFF + length)
    return np.clip(np.concatenate([_path(standoff, end, speed), np.repeat(end[None], rest, axis=0)]), 0.0, 512.0)


@dataclass
class Plan:
    """A chosen push: the agent's targets, the side of the T it pushes and the pose error it leads to."""

    targets: np.ndarray
    side: str
    error: float


@dataclass(frozen=True)
class Pace:
    """How fast (pixels per step) and with what pauses (steps) the demonstrator moves; drawn per episode."""

    approach_speed: float = 25.0
    push_speed: float = 10.0
    wait: int = 2
    rest: int = 2


def plan(sim: PushSim, state: tuple, sides: tuple[str, ...], pace: Pace, rng: np.random.Generator) -> Plan:
    """Returns the best push from a contact on one of `sides`, tried in `sim` from `state`; among pushes within
    0.5 pixels of the best, one is drawn with `rng` so that equal choices vary."""
    agent, pose = np.array(state[:2]), np.array(state[4:])
    found = []
    for contact in contacts():
        if contact.side not in sides:
            continue
        sim.set_state(state)
        head = approach(agent, pose, contact, pace.approach_speed, pace.wait)
        sim.run(head)
        reached = sim.state()
        for turn in PUSH_TURN:
            for length in PUSH_LENGTHS:
                tail = push(pose, contact, turn, length, pace.push_speed, pace.rest)
                sim.set_state(reached)
                sim.run(tail)
                found.append(Plan(np.concatenate([head, tail]), contact.side, pose_error(sim.pose())))
    best = min(plan.error for plan in found)
    near = [plan for plan in found if plan.error <= best + 0.5]
    return near[rng.integers(len(near))]
