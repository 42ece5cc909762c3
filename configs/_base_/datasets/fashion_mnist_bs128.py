# Fashion-MNIST (28x28 grey), prepared by
# tools/dataset_converters/prepare_fashion_mnist.py into data/fashion_mnist.
dataset_type = 'FashionMNIST'
data_preprocessor = dict(
    num_classes=10, mean=[72.94], std=[90.02], to_rgb=False)

train_pipeline = [
    dict(type='RandomCrop', crop_size=28, padding=2),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=128,
    num_workers=2,
    dataset=dict(
        type=dataset_type,
        data_root='data/fashion_mnist',
        split='train',
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
# MMPretrain 1.2.0's FashionMNIST reads the training files unless
# test_mode=True, whatever `split` says.
val_dataloader = dict(
    batch_size=500,
    num_workers=2,
    dataset=dict(
        type=dataset_type,
        data_root='data/fashion_mnist',
        split='test',
        test_mode=True,
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
