"""The numpy deployment format: `sscp export --format numpy` and sscp.runtime_numpy act exactly like
sample_actions for the same noise (SSCP one-step and k-step, flow BC's Euler steps, Diffusion-QL's DDPM chain), need
numpy only, and reject what they cannot run."""

import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sscp import cli, export, runtime, runtime_numpy
from sscp.agents import get_agent
from sscp.agents.dql import DQLAgent, DQLConfig
from sscp.errors import ConfigError
from sscp.nets import FlowField, NoisePredictor, VectorField


def tiny_agent(name: str, steps: int):
    """Returns an untrained agent whose acting network is 2 × 16 on observation 3 / action 2, taking `steps` network
    calls per action: sscp_bc and flow_bc as created for training, dql with its actor only (its critics and optimiser,
    which sample_actions does not use, cost ~5 s of eager initialisation here, as an SSCP agent does: SSCP's EMA
    actor is checked through a trained run below)."""
    example = {"observations": np.zeros((1, 3), np.float32), "actions": np.zeros((1, 2), np.float32)}
    if name == "dql":
        config = DQLConfig(actor_hidden_dims=(16, 16), diffusion_steps=steps)
        actor_def = NoisePredictor(2, config.actor_hidden_dims, time_dim=config.time_dim)
        actor = actor_def.init(jax.random.PRNGKey(0), example["observations"], example["actions"], jnp.zeros((1,)))
        return DQLAgent({"actor": actor}, None, None, None, None, None, config, actor_def, None, None)
    agent_cls, config_cls = get_agent(name)
    steps_field = {"sscp_bc": "sample_steps", "flow_bc": "flow_steps"}[name]
    extra = {"time_embed_dim": 16} if name == "sscp_bc" else {}
    config = config_cls(hidden_dims=(16, 16), **{steps_field: steps}, **extra)
    return agent_cls.create(jax.random.PRNGKey(0), example, config)


def numpy_round_trip(agent, name: str) -> runtime_numpy.Policy:
    """Returns the numpy policy of `agent`, packed into a file's bytes and loaded back."""
    arrays, header = export.numpy_policy(agent, name, obs_dim=3)
    return runtime_numpy.Policy(*runtime_numpy.unpack(runtime_numpy.pack(header, arrays)))


@pytest.mark.parametrize(
    ("name", "steps", "sampler", "draws"),
    [("sscp_bc", 1, "euler", 1), ("sscp_bc", 3, "euler", 1), ("flow_bc", 3, "euler", 1), ("dql", 3, "ddpm", 3)],
)
def test_numpy_policy_is_sample_actions_for_the_same_noise(name, steps, sampler, draws):
    agent = tiny_agent(name, steps)
    policy = numpy_round_trip(agent, name)
    obs = np.random.default_rng(0).normal(0, 2, (64, 3)).astype(np.float32)
    key = jax.random.PRNGKey(7)
    # the actions, and all the noise sample_actions draws for them, in one compiled program
    both = jax.jit(lambda o, k: (agent.sample_actions(o, k), export.sampler_noise(policy.sampler, k, steps, (64, 2))))
    expected, z = map(np.asarray, both(obs, key))
    assert np.max(np.abs(policy(obs, noise=z) - expected)) <= 1e-5
    assert (policy.sampler, policy.noise_draws, policy.header["steps"]) == (sampler, draws, steps)
    assert z.shape == (draws, 64, 2) and 0.05 < np.std(expected)
    np.testing.assert_array_equal(policy(obs[0], noise=z[:, 0]), policy(obs[:1], noise=z[:, :1])[0])
    assert policy(obs[0]).shape == (2,) and not np.array_equal(policy(obs), policy(obs))  # fresh numpy noise
    with pytest.raises(ValueError, match=r"expected \(3,\) or \(B, 3\)"):
        policy(np.zeros(4))
    with pytest.raises(ValueError, match=rf"noise has shape \(3,\); .*\({draws} standard-normal draw"):
        policy(obs, noise=np.zeros(3))
    if draws > 1:  # the initial noise alone is not enough for a chain that adds noise after its calls
        with pytest.raises(ValueError, match=r"noise has shape \(64, 2\)"):
            policy(obs, noise=z[0])


def test_numpy_format_rejects_other_agents_and_networks():
    with pytest.raises(ConfigError, match="exports sscp, flow_bc, sscp_bc, dql .* export fql with --format jax"):
        export.numpy_policy(SimpleNamespace(numpy_export=lambda: None), "fql", obs_dim=3)

    def exporting(net, order, schedule):  # an agent acting with `net`, as numpy_export describes it
        return SimpleNamespace(numpy_export=lambda: (net, None, order, schedule))

    with pytest.raises(ConfigError, match="layer norm True"):
        net = VectorField(2, (16,), layer_norm=True)
        export.numpy_policy(exporting(net, ("obs", "x", "time"), "euler_then_complete"), "sscp", obs_dim=3)
    with pytest.raises(ConfigError, match="layer norm True"):
        net = FlowField(2, (16,), layer_norm=True)
        export.numpy_policy(exporting(net, ("obs", "x", "time"), "euler"), "flow_bc", obs_dim=3)
    with pytest.raises(ConfigError, match="activation relu"):
        net = NoisePredictor(2, (16,), activation="relu")
        export.numpy_policy(exporting(net, ("x", "time", "obs"), "ddpm"), "dql", obs_dim=3)


@pytest.fixture(scope="module")
def numpy_export(trained_run, tmp_path_factory):
    """Returns (trainer, path of run 1's numpy policy written by `sscp export --format numpy`)."""
    trainer, _ = trained_run
    path = tmp_path_factory.mktemp("numpy_export") / "policy.npz"
    assert cli.main(["export", str(trainer.run_dir), "--run", "1", "--format", "numpy", "--out", str(path)]) == 0
    return trainer, path


def test_numpy_export_round_trip_acts_like_the_trained_agent(numpy_export, capsys):
    trainer, path = numpy_export
    policy = runtime_numpy.load(path)
    assert policy.header["agent"] == "sscp" and policy.header["run"] == 1 and policy.header["steps"] == 1
    agent = jax.tree.map(lambda x: x[1], trainer.agents)
    obs = np.asarray(trainer.data.observations[:9])
    key = jax.random.PRNGKey(5)
    expected = np.asarray(agent.sample_actions(obs, key))
    np.testing.assert_allclose(policy(obs, noise=jax.random.normal(key, expected.shape)), expected, atol=1e-5)
    jax_file = path.with_name("jax.sscp")
    jax_file.write_bytes(runtime.MAGIC)
    with pytest.raises(ValueError, match="load it with sscp.runtime"):
        runtime_numpy.load(jax_file)
    with pytest.raises(ValueError, match="load with sscp.runtime_numpy"):
        runtime.load(path)
    assert cli.main(["export", str(trainer.run_dir), "--format", "numpy", "--seed", "3"]) == 2
    assert "--seed fixes the jax noise key" in capsys.readouterr().err


def test_numpy_runtime_needs_only_numpy(numpy_export):
    _, path = numpy_export
    script = f"""
import sys, importlib.util
for name in ("jax", "jaxlib", "flax", "optax", "sscp"):
    sys.modules[name] = None  # any import of these now fails
spec = importlib.util.spec_from_file_location("policy_runtime", {str(Path(runtime_numpy.__file__))!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(module.load({str(path)!r})([0.1, 0.2]).shape)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(2,)"


def test_jax_runtime_draws_the_same_keys_inside_its_call(numpy_export):
    trainer, _ = numpy_export
    program, header = export.export_policy(jax.tree.map(lambda x: x[0], trainer.agents), 2, 2, platforms=("cpu",))
    obs = np.asarray(trainer.data.observations[:4])
    own, manual = runtime.Policy(header, program, seed=4), runtime.Policy(header, program)
    keys = jax.random.split(jax.random.PRNGKey(4))
    first = manual(obs, key=keys[1])
    second = manual(obs, key=jax.random.split(keys[0])[1])
    np.testing.assert_array_equal(own(obs), first)
    np.testing.assert_array_equal(own(obs), second)


# the helper computes network layers only (mish, gelu); a sampler's updates run in the caller on either core count
@pytest.mark.parametrize(("name", "steps"), [("sscp_bc", 3), ("flow_bc", 2)])
def test_two_cores_give_the_same_actions_and_stop_their_helper(name, steps):
    agent = tiny_agent(name, steps)
    arrays, header = export.numpy_policy(agent, name, obs_dim=3)
    one, two = runtime_numpy.Policy(header, arrays), runtime_numpy.Policy(header, arrays, cores=2)
    obs = np.random.default_rng(0).normal(0, 2, (8, 3)).astype(np.float32)
    key = jax.random.PRNGKey(7)
    z = np.asarray(export.sampler_noise(one.sampler, key, steps, (8, 2)))
    expected = np.asarray(jax.jit(agent.sample_actions)(obs, key))
    rows = [(o, z[:, i]) for i, o in enumerate(obs)]
    batch_one = np.stack([two(o, noise=n) for o, n in rows])  # the helper computes half of each layer
    np.testing.assert_array_equal(batch_one, np.stack([one(o, noise=n) for o, n in rows]))
    assert np.max(np.abs(batch_one - expected)) <= 1e-5
    np.testing.assert_array_equal(two(obs, noise=z), one(obs, noise=z))  # batches run on the calling core
    helper = two._two_cores.process
    two.close()
    assert helper.poll() == 0 and two(obs[0]).shape == (2,)
    with pytest.raises(ValueError, match="cores must be 1 or 2"):
        runtime_numpy.Policy(header, arrays, cores=3)


def test_two_core_helper_stops_when_its_caller_is_killed(tmp_path):
    agent = tiny_agent("sscp_bc", 1)
    path = tmp_path / "policy.npz"
    arrays, header = export.numpy_policy(agent, "sscp_bc", obs_dim=3)
    path.write_bytes(runtime_numpy.pack(header, arrays))
    script = f"""
import os, signal, importlib.util
spec = importlib.util.spec_from_file_location("policy_runtime", {str(Path(runtime_numpy.__file__))!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
policy = module.load({str(path)!r}, cores=2)
policy([0.1, 0.2, 0.3])
print(policy._two_cores.process.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    helper = int(done.stdout.split()[0])
    for _ in range(200):
        if not Path(f"/proc/{helper}").exists() or "Z" in Path(f"/proc/{helper}/stat").read_text().split()[2]:
            break
        time.sleep(0.01)
    else:
        pytest.fail(f"the helper {helper} still runs 2 s after its caller was killed")
