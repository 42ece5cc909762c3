"""``BranchAccuracy``: per-classifier and ensemble accuracy from the
``branch_scores`` a DKSClassifier attaches with ``eval_branches=True``."""
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmpretrain.evaluation import Accuracy
from mmpretrain.registry import METRICS
from mmpretrain.structures import DataSample

import mmdks  # noqa: F401  registers BranchAccuracy
from mmdks.evaluation import BranchAccuracy

LABELS = [0, 1, 2, 0]
# Per sample: (branch_1, branch_2, main) probabilities over 3 classes.
SCORES = [
    # all right
    [[.8, .1, .1], [.8, .1, .1], [.8, .1, .1]],
    # branch_1 wrong; mean (.3, .6, .1): ensemble right
    [[.6, .3, .1], [.2, .7, .1], [.1, .8, .1]],
    # only main right; mean (.3, .367, .333): ensemble wrong
    [[.7, .2, .1], [.1, .8, .1], [.1, .1, .8]],
    # all wrong; mean (.417, .367, .217): ensemble right
    [[.4, .5, .1], [.4, .1, .5], [.45, .5, .05]],
]
# Hand-counted: right on samples {0}, {0, 1}, {0, 1, 2}, {0, 1, 3}.
EXPECTED_TOP1 = {
    'branch/branch_1_top1': 25.0,
    'branch/branch_2_top1': 50.0,
    'branch/main_top1': 75.0,
    'branch/ensemble_top1': 75.0,
}


def samples(with_branches: bool = True) -> list:
    result = []
    for label, scores in zip(LABELS, SCORES):
        scores = torch.tensor(scores)
        sample = DataSample().set_gt_label(label).set_pred_score(scores[-1])
        if with_branches:
            sample.set_field(scores, 'branch_scores')
        result.append(sample)
    return result


def evaluate(metrics: list, data_samples: list) -> dict:
    evaluator = Evaluator(metrics)
    evaluator.process(data_samples)
    return evaluator.evaluate(len(data_samples))


def test_hand_counted_accuracy_beside_mmpretrain_accuracy():
    metrics = evaluate([
        Accuracy(topk=(1, )),
        METRICS.build(dict(type='BranchAccuracy')),
    ], samples())
    assert metrics == pytest.approx({'accuracy/top1': 75.0, **EXPECTED_TOP1})
    # The main head's row is what MMPretrain's Accuracy scores.
    assert metrics['branch/main_top1'] == metrics['accuracy/top1']


def test_topk_and_prefix():
    metrics = evaluate([BranchAccuracy(topk=(1, 2), prefix='dks')], samples())
    # branch_1's top-2 misses only sample 2 (label 2, top-2 {0, 1}).
    assert metrics['dks/branch_1_top2'] == pytest.approx(75.0)
    assert metrics['dks/main_top2'] == pytest.approx(100.0)
    assert metrics['dks/branch_2_top1'] == pytest.approx(50.0)
    assert len(metrics) == 8


def test_main_matches_mmpretrain_accuracy_on_random_scores():
    torch.manual_seed(0)
    data_samples = []
    for _ in range(50):
        scores = torch.rand(3, 7).softmax(dim=1)
        sample = DataSample().set_gt_label(int(torch.randint(7, ())))
        sample.set_pred_score(scores[-1]).set_field(scores, 'branch_scores')
        data_samples.append(sample)
    metrics = evaluate([Accuracy(topk=(1, 3)),
                        BranchAccuracy(topk=(1, 3))], data_samples)
    for k in (1, 3):
        assert metrics[f'branch/main_top{k}'] == pytest.approx(
            metrics[f'accuracy/top{k}'])


def test_missing_branch_scores_says_what_to_set():
    evaluator = Evaluator([BranchAccuracy()])
    with pytest.raises(KeyError, match=r'model\.eval_branches=True'):
        evaluator.process(samples(with_branches=False))


@pytest.mark.parametrize('topk', [0, (1, -2), ()])
def test_bad_topk(topk):
    with pytest.raises(ValueError, match='topk'):
        BranchAccuracy(topk=topk)


def test_topk_beyond_classes():
    with pytest.raises(ValueError, match='num_classes'):
        evaluate([BranchAccuracy(topk=5)], samples())
