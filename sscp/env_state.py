"""Snapshots of gymnasium environments in the middle of an episode, for exact resume of online runs.

Pickling a gymnasium MuJoCo env does not save its state: the MuJoCo envs pickle as their constructor arguments
(EzPickle) and OGBench's envs do not pickle at all. A snapshot instead keeps the Python state of every wrapper layer
and of the unwrapped env (its attributes: np_random, the time-limit counter, the task, ...), with two substitutions
made while pickling:
- the env's MjModels are not written (tens of MB of meshes and textures for OGBench); their small arrays (up to
  20,000 numbers each: geometry, colours, gains) are, and are copied back into the models of the env being restored;
- every MjData is written as its fixed-size arrays (qpos, qvel, warm start, derived quantities, ...) and `time`, and
  read back as a new MjData of the live model with those arrays. Arrays sized by the current contacts and
  constraints are left out and rebuilt from the restored state (see `_Unpickler`).
Attributes that cannot be pickled (renderer options, dm_control's MJCF trees, which only describe the model) are
left as the freshly made env has them. Whether this reproduces an env id bit for bit is measured, not assumed:
`is_exact(name)` replays a short rollout with a reset in it from a snapshot and compares every observation, reward
and flag.
"""

import io
import pickle
import warnings

import mujoco
import numpy as np

from sscp.envs import make_env

SMALL_MODEL_ARRAY = 20_000


class SnapshotError(Exception):
    """An env's state could not be saved or restored."""


class _SkipAttribute(Exception):
    """Raised while pickling an attribute that is a static model description (kept as the fresh env has it)."""


def _layers(env) -> list:
    """Returns the wrapper chain from the outermost wrapper to the unwrapped env."""
    out = [env]
    while hasattr(out[-1], "env"):
        out.append(out[-1].env)
    return out


def _models(env) -> list[mujoco.MjModel]:
    """Returns the distinct MjModels held by env's layers or by their attributes' attributes, in a fixed order.

    OGBench's manipulation envs hold two: the simulation's and the inverse-kinematics controller's.
    """
    found: dict[int, mujoco.MjModel] = {}
    for layer in _layers(env):
        for value in vars(layer).values():
            inner = vars(value).values() if hasattr(value, "__dict__") and not isinstance(value, type) else ()
            for v in (value, *inner):
                if isinstance(v, mujoco.MjModel):
                    found.setdefault(id(v), v)
    return list(found.values())


def _arrays(obj, names=None) -> dict[str, np.ndarray]:
    """Returns {name: copy} of obj's public numpy-array attributes."""
    out = {}
    for name in names if names is not None else dir(obj):
        if name.startswith("_"):
            continue
        try:
            value = getattr(obj, name)
        except Exception:  # some MuJoCo properties raise for unused features
            continue
        if isinstance(value, np.ndarray):
            out[name] = value.copy()
    return out


class _Pickler(pickle.Pickler):
    def __init__(self, file, models: list[mujoco.MjModel]):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.models = {id(m): i for i, m in enumerate(models)}
        self.datas: dict[int, int] = {}
        self.data_arrays: list[dict] = []

    def persistent_id(self, obj):
        if isinstance(obj, mujoco.MjModel):
            if id(obj) not in self.models:
                raise SnapshotError("an MjModel nested deeper than the env's attributes' attributes")
            return ("MjModel", self.models[id(obj)])
        if isinstance(obj, mujoco.MjData):
            if id(obj.model) not in self.models:
                raise SnapshotError("an MjData of an MjModel the env does not hold")
            if id(obj) not in self.datas:
                fresh = mujoco.MjData(obj.model)
                fixed = [k for k, v in _arrays(fresh).items() if getattr(obj, k).shape == v.shape]
                self.datas[id(obj)] = len(self.data_arrays)
                self.data_arrays.append(
                    {"model": self.models[id(obj.model)], "arrays": _arrays(obj, fixed), "time": float(obj.time)}
                )
            return ("MjData", self.datas[id(obj)])
        if type(obj).__module__.startswith("dm_control.mjcf"):
            raise _SkipAttribute
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, models: list[mujoco.MjModel], data_arrays: list[dict]):
        super().__init__(file)
        self.models = models
        self.data_arrays = data_arrays
        self.datas: dict[int, mujoco.MjData] = {}

    def persistent_load(self, pid):
        if pid[0] == "MjModel":
            return self.models[pid[1]]
        if pid[0] == "MjData":
            index = pid[1]
            if index not in self.datas:
                saved = self.data_arrays[index]
                model = self.models[saved["model"]]
                data = mujoco.MjData(model)
                _set_arrays(data, saved)
                # Contacts and constraints live in MjData's arena, sized per step: rebuild them from the restored
                # state with mj_step1 (what DMC-style stepping, e.g. OGBench's humanoid, leaves there after a step),
                # then put back the saved arrays, which mj_step1 overwrote with values of the current state.
                mujoco.mj_step1(model, data)
                _set_arrays(data, saved)
                self.datas[index] = data
            return self.datas[index]
        raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")


def _set_arrays(data: mujoco.MjData, saved: dict) -> None:
    for name, value in saved["arrays"].items():
        getattr(data, name)[...] = value
    data.time = saved["time"]


def snapshot(env) -> bytes:
    """Returns the state of env (every wrapper layer and the MuJoCo state) as bytes; see the module docstring."""
    models = _models(env)
    buf = io.BytesIO()
    pickler = _Pickler(buf, models)
    layers = []
    for layer in _layers(env):
        kept = {}
        for name, value in vars(layer).items():
            if name == "env":
                continue
            start, memo = buf.tell(), pickler.memo.copy()
            try:
                pickler.dump(value)
            except (_SkipAttribute, TypeError, AttributeError, pickle.PicklingError):
                # Forget what the failed dump wrote and memoised, or later attributes would refer to it.
                buf.seek(start)
                buf.truncate()
                pickler.memo = memo
                continue
            kept[name] = (start, buf.tell())
        layers.append(kept)
    small = [{k: v for k, v in _arrays(m).items() if v.size <= SMALL_MODEL_ARRAY} for m in models]
    return pickle.dumps(
        {"layers": layers, "stream": buf.getvalue(), "datas": pickler.data_arrays, "models": small},
        protocol=pickle.HIGHEST_PROTOCOL,
    )


def restore(env, blob: bytes) -> None:
    """Puts env (a fresh env of the same id, reset once) into the state a snapshot saved."""
    try:
        saved = pickle.loads(blob)
        models, layers = _models(env), _layers(env)
        if (len(layers), len(models)) != (len(saved["layers"]), len(saved["models"])):
            raise SnapshotError(
                f"{len(saved['layers'])} wrapper layers and {len(saved['models'])} MjModels saved, the env has "
                f"{len(layers)} and {len(models)}"
            )
        for model, arrays in zip(models, saved["models"], strict=True):
            for name, value in arrays.items():
                getattr(model, name)[...] = value
        stream = io.BytesIO(saved["stream"])
        unpickler = _Unpickler(stream, models, saved["datas"])
        for layer, kept in zip(layers, saved["layers"], strict=True):
            for name, (start, _) in kept.items():
                stream.seek(start)
                vars(layer)[name] = unpickler.load()  # bypasses wrapper properties such as np_random's setter
    except SnapshotError:
        raise
    except Exception as e:  # any failure means the saved state does not fit this env
        raise SnapshotError(f"{type(e).__name__}: {e}") from None


_EXACT: dict[str, tuple[bool, str]] = {}


def is_exact(name: str, steps: int = 40) -> tuple[bool, str]:
    """Returns (whether a snapshot of env id `name` continues bit for bit, why not), measured once per process.

    Two fresh envs: the first takes random steps, is snapshotted, then runs `steps` more steps with a reset halfway;
    the second is restored from the snapshot and replays the same actions. NumPy's global RNG (which some OGBench
    envs draw from at reset) is put back afterwards, so the probe changes nothing else in the process.
    """
    if name in _EXACT:
        return _EXACT[name]
    global_rng = np.random.get_state()
    envs = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            first, second = make_env(name), make_env(name)
            envs = [first, second]
            rng = np.random.default_rng(0)
            shape, dtype = first.action_space.shape, first.action_space.dtype
            first.reset(seed=0)
            second.reset(seed=1)
            for _ in range(5):
                first.step(rng.uniform(-1, 1, shape).astype(dtype))
            blob = snapshot(first)
            at_snapshot = np.random.get_state()
            plan = [rng.uniform(-1, 1, shape).astype(dtype) for _ in range(steps)]
            want = _rollout(first, plan)
            np.random.set_state(at_snapshot)
            restore(second, blob)
            got = _rollout(second, plan)
        result = (True, "") if _same(want, got) else (False, "a restored copy diverged from the original")
    except Exception as e:  # SnapshotError, or an env that fails in an unexpected way
        result = (False, f"{type(e).__name__}: {e}")
    finally:
        for env in envs:
            env.close()
        np.random.set_state(global_rng)
    _EXACT[name] = result
    return result


def _rollout(env, actions: list[np.ndarray]) -> list:
    out = []
    for i, a in enumerate(actions):
        obs, reward, terminated, truncated, _ = env.step(a)
        out.append((np.asarray(obs), float(reward), bool(terminated), bool(truncated)))
        if terminated or truncated or i == len(actions) // 2:
            out.append((np.asarray(env.reset()[0]), 0.0, False, False))
    return out


def _same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        x[0].tobytes() == y[0].tobytes() and x[1:] == y[1:] for x, y in zip(a, b, strict=True)
    )
