"""SynergyWarmupHook: alpha ramps over optimizer steps, from the runner's
iteration, and resumes where it stopped."""
from types import SimpleNamespace

import torch
import torch.nn as nn

from mmdks.engine import SynergyWarmupHook
from mmdks.models.losses import SynergyLoss


def runner(model, iteration, accumulation=1):
    return SimpleNamespace(
        model=model,
        iter=iteration,
        optim_wrapper=SimpleNamespace(_accumulative_counts=accumulation))


def factors(hook, model, iterations, accumulation=1):
    loss = model[0]
    values = []
    for i in iterations:
        hook.before_train_iter(runner(model, i, accumulation), i)
        values.append(loss.warmup_factor.item())
    return values


def test_ramps_over_optimizer_steps():
    model = nn.Sequential(SynergyLoss(warmup_iters=4), SynergyLoss())
    hook = SynergyWarmupHook()
    assert factors(hook, model, range(6)) == [0, .25, .5, .75, 1, 1]
    # Two micro-batches a step: the ramp counts steps.
    model = nn.Sequential(SynergyLoss(warmup_iters=4))
    assert factors(hook, model, range(10), accumulation=2) == \
        [0, 0, .25, .25, .5, .5, .75, .75, 1, 1]
    # The loss without warm-up is left alone.
    assert not nn.Sequential(SynergyLoss())[0].warmup_driven


def test_resumes_from_the_runner_iteration_and_scales_the_loss():
    logits = torch.randn(3, 6, 9)
    full = SynergyLoss(alpha=2.0)(logits)
    model = nn.Sequential(SynergyLoss(alpha=2.0, warmup_iters=4))
    # A run resumed at iteration 3: no counter in the checkpoint needed.
    assert factors(SynergyWarmupHook(), model, [3]) == [.75]
    torch.testing.assert_close(model[0](logits), 0.75 * full)
