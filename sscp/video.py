"""Evaluation videos (`sscp eval RUN --video`): one rendered episode per run, written as an H.264 MP4 with the
ffmpeg binary that the `imageio-ffmpeg` package ships (the `video` extra).

Rendering is MuJoCo's offscreen renderer: set MUJOCO_GL=egl (GPU machines, and Mesa's EGL on CPU-only ones) or
osmesa before sscp starts; `sscp eval --video` sets egl when MUJOCO_GL is unset.
"""

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sscp.envs import make_env
from sscp.errors import ConfigError, OutputError


def write_video(path: str | os.PathLike, frames: list[np.ndarray], fps: int = 30) -> Path:
    """Returns `path` after writing uint8 RGB frames [H, W, 3] (all the same size) as an MP4; odd sizes are padded by
    one black row or column (H.264 in yuv420p needs even sizes)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ConfigError('--video needs the imageio-ffmpeg package: pip install "sscp[video]"') from None
    if not frames:
        raise ValueError("no frames to write")
    height, width = frames[0].shape[:2]
    pad = ((0, height % 2), (0, width % 2), (0, 0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # imageio-ffmpeg starts ffmpeg with a Python preexec function (to shield it from Ctrl-C), which makes the start a
    # Python-level fork that JAX warns about; without it the child runs no Python code before exec.
    os.environ.setdefault("IMAGEIO_FFMPEG_NO_PREVENT_SIGINT", "1")
    try:
        writer = imageio_ffmpeg.write_frames(
            str(path), (width + width % 2, height + height % 2), fps=fps, macro_block_size=1, ffmpeg_log_level="error"
        )
        writer.send(None)
        for frame in frames:
            if frame.shape[:2] != (height, width):
                raise ValueError(f"frame of shape {frame.shape} in a video of {height} x {width} frames")
            writer.send(np.ascontiguousarray(np.pad(np.asarray(frame, np.uint8)[..., :3], pad)))
        writer.close()
    except OSError as e:
        raise OutputError(f"could not write {path}: {e.strerror or e}") from None
    return path


def record_episode(
    act: Callable[..., np.ndarray], env_name: str, seed: int, max_steps: int | None = None, task_id: int | None = None
) -> tuple[list[np.ndarray], float, float]:
    """Returns (frames, return, success) of one episode of `act(observation) -> action` in env `env_name`, rendered
    after the reset and after every step with the env's own camera. With `task_id`, the episode heads for that
    evaluation goal of an OGBench goal-conditioned env, and `act(observation, goal)` gets the goal observation."""
    env = make_env(name=env_name)
    try:
        env.unwrapped.render_mode = "rgb_array"  # the MuJoCo envs build their renderer whatever the mode
        options = None if task_id is None else {"task_id": task_id, "render_goal": False}
        obs, info = env.reset(seed=seed, options=options)
        goal = () if task_id is None else (np.asarray(info["goal"], np.float32),)
        frames, total, success, steps = [_render(env, env_name)], 0.0, 0.0, 0
        done = False
        while not done:
            obs, reward, terminated, truncated, info = env.step(act(np.asarray(obs, np.float32), *goal))
            total += float(reward)
            success = float(info.get("success", 0))
            steps += 1
            done = terminated or truncated or (max_steps is not None and steps >= max_steps)
            frames.append(_render(env, env_name))
        return frames, total, success
    finally:
        env.close()


def _render(env, env_name: str) -> np.ndarray:
    try:
        frame = env.unwrapped.render()
    except Exception as e:  # mujoco.FatalError, GL and EGL errors differ by platform
        raise ConfigError(
            f"cannot render {env_name} ({type(e).__name__}: {' '.join(str(e).split())}); set MUJOCO_GL=egl (or osmesa "
            "where Mesa's OSMesa is installed) before running sscp"
        ) from None
    if frame is None:
        raise ConfigError(f"{env_name} renders no frames (render_mode rgb_array is not supported)")
    return np.asarray(frame)
