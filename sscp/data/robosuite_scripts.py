"""Scripted demonstrators for robosuite's Lift, PickPlaceCan and NutAssemblySquare (sscp.sims.robosuite_env), acting
through the OSC_POSE delta controller: waypoints computed from the object poses, reached by a proportional controller
on the gripper's position and orientation error, with the gripper opened and closed between them.

Each task has two strategies (modes), one drawn per episode, so that the demonstrations are multimodal in what the
arm does and not only in noise:

- Lift: the fingers close on the pair of cube faces nearest the gripper's start yaw (`near`, a turn of at most 45
  degrees) or on the other pair (`far`, a turn of 45 to 135 degrees).
- PickPlaceCan: the can is grasped with the gripper's yaw at 0 (`yaw0`) or 90 degrees (`yaw90`) from its start.
- NutAssemblySquare: the nut, held by its handle, is turned square to the peg clockwise (`cw`) or
  counter-clockwise (`ccw`), so its handle ends on different sides of the peg (never pointing away from the robot,
  out of the arm's reach; where the wrist cannot turn the way drawn, the nut is turned the other way, and the demo
  is labelled with the way it took).

On top of that, each episode draws its speed, and each phase may begin with a pause of a few steps, so the timing
varies within a mode too. A script is a generator of actions that reads the simulator's state before each one.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

MODES = {"Lift": ("near", "far"), "PickPlaceCan": ("yaw0", "yaw90"), "NutAssemblySquare": ("cw", "ccw")}
"""Each task's strategies, as written in the files' `sscp_mode` demo attribute."""

OPEN, CLOSE = -1.0, 1.0
DOWN = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
"""The grip site's orientation pointing down at yaw 0, nearly the Panda's start (fingers close along world y)."""
YAW_RANGE = np.radians((-110.0, 190.0))
"""Yaws (about world z, from DOWN) the Panda's last joint reaches from its start, with a margin to its limit."""
POSITION_SCALE, ROTATION_SCALE = 0.05, 0.5
"""Metres and radians that a delta action of 1 asks for (the BASIC controller's output limits)."""
GAIN = 3.0
"""Delta asked for in one step, as a multiple of the remaining error (before the speed limit): more than 1, as the
controller moves the arm by only about a quarter of the delta it is asked for in one 50 ms step."""
PAUSE_CHANCE, PAUSE_STEPS = 0.3, (2, 10)
"""Chance that a phase starts with a pause, and its range of steps."""

Target = Callable[[], np.ndarray]
"""A target read anew at every step (it may follow an object)."""


def down(yaw: float) -> np.ndarray:
    """Returns the grip site's rotation pointing down, turned by `yaw` radians about world z."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ DOWN


def yaw_of(rotation: np.ndarray) -> float:
    """Returns the angle about world z of a rotation's x axis (an object's heading on the table)."""
    return float(np.arctan2(rotation[1, 0], rotation[0, 0]))


def wrap(angle: float, period: float) -> float:
    """Returns `angle` shifted by whole periods into [-period / 2, period / 2)."""
    return float((angle + period / 2) % period - period / 2)


@dataclass
class Motion:
    """Moves the gripper of `env` (a RobosuiteEnv) by delta actions; `speed` caps a step's position action. `mode`
    is the strategy the script took (`play` sets the one asked for; a script that cannot take it says which)."""

    env: object
    rng: np.random.Generator
    speed: float
    mode: str = ""

    def action(self, position: np.ndarray, rotation: np.ndarray, grip: float) -> np.ndarray:
        """Returns the delta action towards the target pose: GAIN times the error, the position part capped at the
        episode's speed and the rotation part at twice that."""
        here, current = self.env.eef_pose()
        move = GAIN * (position - here) / POSITION_SCALE
        turn = GAIN * Rotation.from_matrix(rotation @ current.T).as_rotvec() / ROTATION_SCALE
        move *= min(1.0, self.speed / max(np.linalg.norm(move), 1e-9))
        turn *= min(1.0, 2 * self.speed / max(np.linalg.norm(turn), 1e-9))
        return np.clip(np.concatenate([move, turn, [grip]]), -1.0, 1.0)

    def move(
        self, position: Target, rotation: Target, grip: float, tolerance: float = 0.01, limit: int = 80
    ) -> Iterator[np.ndarray]:
        """Yields actions until the gripper is within `tolerance` metres and 0.1 rad of the target pose (both
        re-read at every step) and has all but stopped (moved less than `tolerance` / 2 in the last step, so the
        next phase does not start with an overshoot), or after `limit` steps; may pause first."""
        yield from self.pause(grip)
        last = self.env.eef_pose()[0]
        for _ in range(limit):
            target, turn = position(), rotation()
            here, current = self.env.eef_pose()
            angle = Rotation.from_matrix(turn @ current.T).magnitude()
            still = np.linalg.norm(here - last) < tolerance / 2
            if np.linalg.norm(target - here) < tolerance and angle < 0.1 and still:
                return
            last = here
            yield self.action(target, turn, grip)

    def hold(self, grip: float, steps: int) -> Iterator[np.ndarray]:
        """Yields `steps` actions that keep the gripper where it is with the gripper command `grip`."""
        here, current = self.env.eef_pose()
        for _ in range(steps):
            yield self.action(here, current, grip)

    def pause(self, grip: float) -> Iterator[np.ndarray]:
        """Yields a pause of PAUSE_STEPS steps with chance PAUSE_CHANCE, else nothing."""
        if self.rng.random() < PAUSE_CHANCE:
            yield from self.hold(grip, int(self.rng.integers(*PAUSE_STEPS, endpoint=True)))


def _at(env, body: str, offset) -> Target:
    """Returns a target that follows `body`'s position plus `offset` (metres, world frame)."""
    return lambda: env.body_pose(body)[0] + np.asarray(offset, float)


def _fixed(value: np.ndarray) -> Target:
    """Returns a target that stays at `value`."""
    return lambda: value


def lift(motion: Motion, mode: str) -> Iterator[np.ndarray]:
    """Yields Lift's actions: above the cube, down, close, and up until the cube is lifted."""
    env, rng = motion.env, motion.rng
    yaw = wrap(yaw_of(env.body_pose("cube_main")[1]), np.pi / 2)  # a pair of faces, at most 45 degrees away
    if mode == "far":  # the turn is positive, the way the wrist has more room
        yaw += np.pi / 2
    turn = _fixed(down(yaw))
    yield from motion.move(_at(env, "cube_main", [0, 0, rng.uniform(0.06, 0.12)]), turn, OPEN, tolerance=0.02)
    yield from motion.move(_at(env, "cube_main", [0, 0, 0.005]), turn, OPEN, tolerance=0.006)
    yield from motion.hold(CLOSE, int(rng.integers(6, 10, endpoint=True)))
    yield from motion.move(_at(env, "cube_main", [0, 0, 0.2]), turn, CLOSE, limit=60)


CAN_GOAL = np.array([0.165, 0.345])
"""Where the can is put down: in its quarter of the target bin (x 0.1 to 0.295, y 0.28 to 0.525: PickPlace's bin2,
the quarter towards +x, +y), near the corner closest to the robot (the far side is at the edge of the arm's reach),
the can's 3.3 cm radius clear of the bin's dividers."""


def _carrying(env, body: str, goal: Target) -> Target:
    """Returns a gripper target that brings a held `body` to `goal`, the body's offset from the gripper re-read at
    every step (it turns with the gripper, and a grasp may slip a little). Once the body is 2 cm further from or
    nearer to the gripper than at the start (dropped, or caught on something), the target is where the gripper is:
    following the offset then would run away with the gripper."""
    held = np.linalg.norm(env.eef_pose()[0] - env.body_pose(body)[0])

    def target() -> np.ndarray:
        here = env.eef_pose()[0]
        offset = here - env.body_pose(body)[0]
        return goal() + offset if abs(np.linalg.norm(offset) - held) < 0.02 else here

    return target


def can(motion: Motion, mode: str) -> Iterator[np.ndarray]:
    """Yields PickPlaceCan's actions: above the can, down, close, up out of the bin, over the can's quarter of the
    target bin, down, open and up."""
    env, rng = motion.env, motion.rng
    turn = _fixed(down(np.pi / 2 if mode == "yaw90" else 0.0))
    # Above the can precisely: a finger 5 mm off lands on the can's rim.
    yield from motion.move(_at(env, "Can_main", [0, 0, rng.uniform(0.08, 0.14)]), turn, OPEN, tolerance=0.004)
    # The can's top is 4 cm above its origin: the palm touches it when the grip site is 1 cm above the origin.
    yield from motion.move(_at(env, "Can_main", [0, 0, 0.02]), turn, OPEN, tolerance=0.006)
    yield from motion.hold(CLOSE, int(rng.integers(8, 12, endpoint=True)))
    grasped = env.eef_pose()[0]
    high = rng.uniform(0.98, 1.02)  # the can's bottom 6 cm lower, clear of the bins' walls (0.9 m high)
    yield from motion.move(_fixed(np.array([*grasped[:2], high + 0.01])), turn, CLOSE, tolerance=0.03)
    goal = np.array([*(CAN_GOAL + rng.uniform(-0.015, 0.015, 2)), high])
    yield from motion.move(_carrying(env, "Can_main", _fixed(goal)), turn, CLOSE, tolerance=0.015, limit=120)
    yield from motion.move(_carrying(env, "Can_main", _fixed(np.array([*goal[:2], 0.9]))), turn, CLOSE)
    yield from motion.hold(OPEN, int(rng.integers(4, 8, endpoint=True)))
    yield from motion.move(_fixed(env.eef_pose()[0] + [0, 0, 0.1]), turn, OPEN)


HANDLE = np.array([0.054, 0.0, 0.0])
"""The square nut's handle in the nut's frame (robosuite's square-nut.xml)."""


def _square_yaws(nut_yaw: float, mode: str) -> tuple[float, float, str]:
    """Returns the gripper's yaw at the grasp (fingers across the handle), its yaw once the nut's sides are square to
    the peg's, and the way the nut was turned: clockwise (`cw`) or counter-clockwise (`ccw`) as `mode` asks, to the
    next quarter turn that does not leave the handle pointing away from the robot (out of the arm's reach over the
    peg); the other way where the wrist cannot turn that far (YAW_RANGE)."""
    for way in (mode, "ccw" if mode == "cw" else "cw"):
        quarters = np.floor(nut_yaw / (np.pi / 2)) + (way == "ccw")
        if quarters % 4 == 0:  # the handle along +x, away from the robot: one more quarter turn
            quarters += 1 if way == "ccw" else -1
        turn = quarters * np.pi / 2 - nut_yaw
        grasps = [nut_yaw + k * np.pi for k in range(-2, 3)]  # the handle is grasped the same turned by half a turn
        fits = [y for y in grasps if YAW_RANGE[0] <= min(y, y + turn) and max(y, y + turn) <= YAW_RANGE[1]]
        if fits:
            grasp = min(fits, key=lambda y: abs(y + turn / 2 - YAW_RANGE.mean()))
            return grasp, grasp + turn, way
    raise AssertionError("unreachable: a turn of at most half a turn fits one way in YAW_RANGE")


def square(motion: Motion, mode: str) -> Iterator[np.ndarray]:
    """Yields NutAssemblySquare's actions: above the nut's handle, down, close, up above the peg's top, the nut
    turned square to the peg while it is carried over the peg, down the peg, open and up."""
    env, rng = motion.env, motion.rng
    handle = lambda: env.body_pose("SquareNut_main")[0] + env.body_pose("SquareNut_main")[1] @ HANDLE  # noqa: E731
    high = rng.uniform(1.0, 1.04)  # the nut 1 cm thick, the peg's top at 0.95 m
    for _ in range(2):  # a grasp that misses the handle is tried once more, from the nut's pose then
        grasp, placed, motion.mode = _square_yaws(yaw_of(env.body_pose("SquareNut_main")[1]), mode)
        yield from motion.move(lambda: handle() + [0, 0, rng.uniform(0.06, 0.1)], _fixed(down(grasp)), OPEN, 0.004)
        yield from motion.move(lambda: handle() + [0, 0, 0.005], _fixed(down(grasp)), OPEN, 0.006, limit=40)
        yield from motion.hold(CLOSE, int(rng.integers(8, 12, endpoint=True)))
        yield from motion.move(_fixed(np.array([*env.eef_pose()[0][:2], high])), _fixed(down(grasp)), CLOSE, 0.03)
        if env.body_pose("SquareNut_main")[0][2] > 0.95:
            break
        yield from motion.hold(OPEN, 5)
    peg = env.body_pose("peg1")[0]
    over = _carrying(env, "SquareNut_main", _fixed(np.array([*peg[:2], high])))
    yield from motion.move(over, _fixed(down(placed)), CLOSE, tolerance=0.004, limit=120)
    down_peg = _carrying(env, "SquareNut_main", _fixed(np.array([*peg[:2], 0.85])))
    yield from motion.move(down_peg, _fixed(down(placed)), CLOSE, tolerance=0.01, limit=60)
    yield from motion.hold(OPEN, int(rng.integers(4, 8, endpoint=True)))
    yield from motion.move(_fixed(env.eef_pose()[0] + [0, 0, 0.08]), _fixed(down(placed)), OPEN)


def play(motion: Motion, task: str, mode: str, settle: int = 20) -> Iterator[np.ndarray]:
    """Yields the actions of `task`'s script in `mode` (the mode it took is then `motion.mode`), then `settle` steps
    that hold the gripper still (for a success that needs the object to come to rest)."""
    script = {"Lift": lift, "PickPlaceCan": can, "NutAssemblySquare": square}[task]
    motion.mode, grip = mode, OPEN
    for action in script(motion, mode):
        grip = float(action[6])
        yield action
    yield from motion.hold(grip, settle)
