"""The Fashion-MNIST study's report, from fabricated work dirs: methods
with their own seed sets (1, 2 and 3 seeds), a missing run, runs from
another commit and runs recorded before provenance was."""
import json
import os
import sys
import time

import pytest

from helpers import load_study

COMMIT_A, COMMIT_B = 'a' * 40, 'b' * 40
VERSIONS = dict(torch='2.14.1', mmpretrain='1.2.0', mmengine='0.10.7')


def fake_run(work, method, seed, final, provenance=None, epochs=3):
    """A finished run whose three evaluations have top-1 errors ``final +
    2``, ``final + 1`` and ``final`` (mean of the last three: ``final +
    1``), recorded as the study records it."""
    run_dir = work / f'{method}_seed{seed}'
    log = run_dir / '20260101_000000' / 'vis_data' / 'scalars.json'
    log.parent.mkdir(parents=True)
    records = [dict(lr=0.1, loss=1.0, epoch=1, iter=1, step=1)]
    records += [{'accuracy/top1': 100 - final - 3 + epoch, 'step': epoch}
                for epoch in (1, 2, 3)]
    log.write_text(''.join(json.dumps(r) + '\n' for r in records))
    if method != 'baseline':
        (run_dir / 'branches.json').write_text(json.dumps(dict(
            branch_1=final + 1, branch_2=final, main=final,
            ensemble=final - 1)))
    command = (f'tools/train.py config.py --work-dir {run_dir} '
               f'--cfg-options randomness.seed={seed} '
               'train_dataloader.dataset.indices=4000 '
               f'train_cfg.max_epochs={epochs} train_cfg.val_begin=1')
    (run_dir / 'run.json').write_text(json.dumps(dict(
        method=method, seed=seed, wall_s=60.0, device='CPU: test', jobs=2,
        command=command, **(provenance or {}))))


def run_study(monkeypatch, *args):
    monkeypatch.setattr(sys, 'argv', ['study', '--epochs', '3', *args])
    load_study().main()


def listing(root):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(root)
                  for f in fs)


@pytest.fixture
def study_dir(tmp_path):
    """baseline on seeds 0-2 (seed 3 requested, unfinished; seeds 0-1 from
    before provenance), DKS on 0-2 (seed 2 from another, dirty commit), DS
    on 0-1 and DKS-mean on 0 alone."""
    work = tmp_path / 'work'
    new = dict(commit=COMMIT_A, dirty=False, **VERSIONS)
    for seed, final in enumerate((8.0, 8.1, 8.2)):
        fake_run(work, 'baseline', seed, final, new if seed == 2 else None)
    for seed, final in enumerate((8.1, 8.3, 8.5)):
        fake_run(work, 'dks', seed, final,
                 dict(new, commit=COMMIT_B, dirty=True) if seed == 2 else new)
    for seed, final in enumerate((8.05, 8.15)):
        fake_run(work, 'ds', seed, final, new)
    fake_run(work, 'dks-mean', 0, 7.9, new)
    # Started but not finished: a log and no run.json.
    (work / 'baseline_seed3' / 'stamp' / 'vis_data').mkdir(parents=True)
    return work


def test_report_only_with_own_seed_sets_and_a_commit_change(
        study_dir, tmp_path, monkeypatch):
    out = tmp_path / 'report.md'
    out.write_text('old report\n<!-- discussion -->\nmine\n')
    before = listing(study_dir)
    run_study(monkeypatch, '--methods', 'baseline', 'ds', 'dks', 'dks-mean',
              '--seeds', '0-3', '--method-seeds', 'dks=0-2', 'ds=0,1',
              'dks-mean=0', '--work-dir', str(study_dir), '--out', str(out),
              '--report-only')
    report = out.read_text()
    assert listing(study_dir) == before  # trained and scored nothing
    assert 'so not in this report: baseline 3.' in report
    # Each method over its own seeds: 3, 2 and 1.
    assert ('| baseline | 0-2 (3) | 9.10 +/- 0.10 | 9.00, 9.10, 9.20 | '
            '8.10 +/- 0.10 | 8.00, 8.10, 8.20 |') in report
    assert '| ds | 0-1 (2) | 9.10 +/- 0.07 | 9.05, 9.15 |' in report
    assert '| dks-mean | 0 (1) | 8.90 | 8.90 | 7.90 | 7.90 |' in report
    assert '| dks-mean | 0 (1) | 8.90 | 7.90 | 7.90 | 6.90 |' in report
    assert ('- ds - baseline (final): n=2 (seeds 0-1), mean +0.05, std '
            '0.00; no interval: the spread of 2 differences') in report
    assert ('- dks-mean - dks (final): n=1 (seed 0), mean -0.20; no '
            'interval: one pair has no spread') in report
    # Diffs 0.1, 0.2, 0.3: mean 0.2, std 0.1, 0.2 +/- 4.303 * 0.1 / 3**0.5;
    # baseline 0-1 predate provenance, DKS 2 ran on another commit.
    assert ('- dks - baseline (final): n=3 (seeds 0-2), mean +0.20, std '
            '0.10, 95% t-interval [-0.05, +0.45]\n  - the runs compared here '
            'differ in commit: aaaaaaa (dks 0-1, baseline 2), bbbbbbb (dks '
            '2), not recorded (baseline 0-1); uncommitted changes: no (dks '
            '0-1, baseline 2), yes (dks 2), not recorded') in report
    assert ('| baseline seed 0 | CPU: test | 60 (2 at once) | not recorded '
            '| not recorded | not recorded | not recorded | not recorded | '
            '`python tools/train.py') in report
    assert ('| dks seed 2 | CPU: test | 60 (2 at once) | bbbbbbb | yes | '
            '2.14.1 | 1.2.0 | 0.10.7 |') in report
    assert 'Training curves of DKS, seed 0' in report
    assert (tmp_path / 'report_dks_seed0.png').exists()
    assert report.endswith('<!-- discussion -->\nmine\n')


def test_one_seed_reports_without_an_interval(tmp_path, monkeypatch):
    # The issue's --seeds 13: both runs trained, then the report crashed.
    work = tmp_path / 'work'
    new = dict(commit=COMMIT_A, dirty=False, **VERSIONS)
    fake_run(work, 'baseline', 13, 8.30, new)
    fake_run(work, 'dks', 13, 8.24, new)
    out = tmp_path / 'report.md'
    run_study(monkeypatch, '--methods', 'baseline', 'dks', '--seeds', '13',
              '--work-dir', str(work), '--out', str(out), '--no-plot')
    report = out.read_text()
    assert ('- dks - baseline (final): n=1 (seed 13), mean -0.06; no '
            'interval') in report
    assert ('Every run ran on the same code and libraries: commit aaaaaaa, '
            'uncommitted changes no, torch 2.14.1, mmpretrain 1.2.0, '
            'mmengine 0.10.7.') in report
    assert 'not in this report' not in report
    assert 'differ in' not in report


def test_the_study_reports_finished_runs_without_a_plot(tmp_path,
                                                        monkeypatch):
    # A second report of the same work dir (the ablations beside the main
    # study) must not draw the same curves again.
    work = tmp_path / 'work'
    for seed in (0, 1):
        fake_run(work, 'dks', seed, 7.0 - seed)
    out = tmp_path / 'report.md'
    run_study(monkeypatch, '--methods', 'dks', '--seeds', '0', '1',
              '--work-dir', str(work), '--out', str(out), '--no-plot')
    report = out.read_text()
    assert '| dks | 0-1 (2) | 7.50 +/- 0.71 | 8.00, 7.00 |' in report
    assert 'curves' not in report
    assert not list(tmp_path.glob('*.png'))


def test_runs_of_another_schedule_or_none_stop_the_report(
        study_dir, tmp_path, monkeypatch):
    out = tmp_path / 'report.md'
    with pytest.raises(SystemExit, match='train_cfg.max_epochs=5'):
        run_study(monkeypatch, '--methods', 'dks', '--work-dir',
                  str(study_dir), '--out', str(out), '--report-only',
                  '--epochs', '5')
    with pytest.raises(SystemExit, match='no requested run has finished'):
        run_study(monkeypatch, '--methods', 'dks', '--seeds', '7',
                  '--work-dir', str(study_dir), '--out', str(out),
                  '--report-only')
    assert not out.exists()


def test_an_interrupted_run_is_resumed_and_reported_so(tmp_path, monkeypatch):
    # A run cut off after its epoch-2 checkpoint, 100 s into its first
    # session: the study continues it with --resume, keeps its output and
    # counts the earlier session's time.
    study = load_study()
    work = tmp_path / 'work'
    run_dir = work / 'baseline_seed0'
    start = time.time() - 1000
    (run_dir / time.strftime('%Y%m%d_%H%M%S', time.localtime(start))).mkdir(
        parents=True)
    checkpoint = run_dir / 'epoch_2.pth'
    checkpoint.write_bytes(b'')
    os.utime(checkpoint, (start + 100, start + 100))
    (run_dir / 'last_checkpoint').write_text(str(checkpoint))
    (run_dir / 'stdout.log').write_text('first session\n')
    calls = []

    def train(cmd, stdout, **kwargs):
        calls.append(cmd)
        stdout.write('second session\n')

    monkeypatch.setattr(study.subprocess, 'run', train)
    monkeypatch.setattr(study, 'run_provenance', lambda root: {})
    monkeypatch.setattr(sys, 'argv', ['study', '--epochs', '3', '--work-dir',
                                      str(work)])
    record = study.run_one(study.parse_args(), 'baseline', 0)
    assert calls[0][-1] == '--resume' and '--resume' not in record['command']
    assert record['resumed_from'] == 'epoch_2.pth'
    assert 100 <= record['wall_s'] < 160
    assert (run_dir / 'stdout.log').read_text() == \
        'first session\nsecond session\n'
    assert json.loads((run_dir / 'run.json').read_text()) == record

    fake_run(work, 'dks', 0, 8.0)
    log = run_dir / '20260101_000000' / 'vis_data' / 'scalars.json'
    log.parent.mkdir(parents=True)
    log.write_text((work / 'dks_seed0' / '20260101_000000' / 'vis_data' /
                    'scalars.json').read_text())
    out = tmp_path / 'report.md'
    run_study(monkeypatch, '--methods', 'baseline', 'dks', '--seeds', '0',
              '--work-dir', str(work), '--out', str(out), '--report-only')
    assert '(2 at once; resumed from epoch_2.pth)' in out.read_text()


def test_the_report_stays_in_the_work_dir_and_names_its_plot_s_seed(
        tmp_path, monkeypatch):
    # Run from elsewhere with a relative --work-dir and no --out: the
    # report goes beside the runs, not over the repository's docs.
    for seed in (3, 4):
        fake_run(tmp_path / 'work', 'dks', seed, 7.0)
    monkeypatch.chdir(tmp_path)
    run_study(monkeypatch, '--methods', 'dks', '--seeds', '3', '4',
              '--work-dir', 'work', '--report-only')
    report = (tmp_path / 'work' / 'report.md').read_text()
    assert 'Training curves of DKS, seed 3: ![curves](report_dks_seed3.png)' \
        in report
    assert (tmp_path / 'work' / 'report_dks_seed3.png').exists()
