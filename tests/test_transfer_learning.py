"""Tests of companion.transfer_learning: folder loading, the model builders, feature extraction, cost counting.

They use ``weights=None`` and small inputs, so they need neither the ImageNet weights nor a network.
"""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from companion import transfer_learning  # noqa: E402
from companion.history import History  # noqa: E402


@pytest.fixture
def image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, count in (("cats", 3), ("dogs", 2)):
        (tmp_path / name).mkdir()
        for i in range(count):
            pixels = rng.integers(0, 256, size=(30 + i, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / name / f"{i}.png")
    Image.fromarray(np.zeros((20, 20), dtype=np.uint8)).convert("P").save(tmp_path / "cats" / "placeholder.gif")
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    return tmp_path


def test_load_image_folder_shapes_labels_and_order(image_folder):
    images, labels, paths = transfer_learning.load_image_folder(image_folder, 16)
    assert images.shape == (6, 16, 16, 3) and images.dtype == np.uint8
    assert labels.tolist() == [0, 0, 0, 0, 1, 1]  # sorted class folders; the .txt file is skipped
    assert [p.name for p in paths[:4]] == ["0.png", "1.png", "2.png", "placeholder.gif"]


def test_load_image_folder_exclude_and_class_order(image_folder):
    images, labels, paths = transfer_learning.load_image_folder(
        image_folder, 8, class_names=["dogs", "cats"], exclude=["placeholder.gif"]
    )
    assert len(images) == 5 and labels.tolist() == [0, 0, 1, 1, 1]
    assert all(p.name != "placeholder.gif" for p in paths)


def test_center_crop_keeps_the_middle(tmp_path):
    from PIL import Image

    (tmp_path / "a").mkdir()
    pixels = np.zeros((10, 30, 3), dtype=np.uint8)
    pixels[:, 10:20] = 255  # a white middle third
    Image.fromarray(pixels).save(tmp_path / "a" / "x.png")
    images, _, _ = transfer_learning.load_image_folder(tmp_path, 10)
    assert images.shape == (1, 10, 10, 3)
    assert images[0, :, 2:8].min() > 200  # the crop is the white middle


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "224"])
def test_load_image_folder_rejects_bad_image_size(image_folder, bad):
    with pytest.raises(ValueError, match="image_size"):
        transfer_learning.load_image_folder(image_folder, bad)


def test_load_image_folder_rejects_missing_folders(tmp_path, image_folder):
    with pytest.raises(ValueError, match="root"):
        transfer_learning.load_image_folder(tmp_path / "nowhere", 8)
    with pytest.raises(ValueError, match="class_names"):
        transfer_learning.load_image_folder(image_folder, 8, class_names=["birds"])


def test_unknown_regime_raises():
    with pytest.raises(ValueError, match="regime"):
        transfer_learning.build_base("transfer", 32, weights=None)


def test_build_base_regimes_and_trainability():
    scratch = transfer_learning.build_base("scratch", 32)
    frozen = transfer_learning.build_base("feature_extraction", 32, weights=None)
    assert scratch.trainable and len(scratch.trainable_weights) > 0
    assert not frozen.trainable and len(frozen.trainable_weights) == 0
    assert scratch.output_shape == (None, 1, 1, 1280)


def test_build_head_outputs_logits():
    head = transfer_learning.build_head(1280, 2)
    assert head.output_shape == (None, 2)
    assert head.layers[-1].activation.__name__ == "linear"
    assert transfer_learning.build_head(8, 3, hidden_units=4).count_params() == (8 * 4 + 4) + (4 * 3 + 3)
    with pytest.raises(ValueError, match="hidden_units"):
        transfer_learning.build_head(8, 3, hidden_units=-1)
    with pytest.raises(ValueError, match="dropout"):
        transfer_learning.build_head(8, 3, dropout=1.0)
    with pytest.raises(ValueError, match="num_classes"):
        transfer_learning.build_head(8, 0)


def test_transfer_model_and_unfreeze_top():
    base = transfer_learning.build_base("fine_tuning", 32, weights=None)
    model = transfer_learning.build_transfer_model(base, transfer_learning.build_head(1280, 2), "fine_tuning")
    assert model.output_shape == (None, 2)
    head_weights = len(model.trainable_weights)
    assert head_weights == 2  # only the head's kernel and bias
    n = transfer_learning.unfreeze_top(base, "block_16_expand")
    assert n > 0 and len(model.trainable_weights) == head_weights + n
    assert not base.get_layer("block_15_expand").trainable and base.get_layer("Conv_1").trainable
    with pytest.raises(ValueError, match="first_trainable"):
        transfer_learning.unfreeze_top(base, "no_such_layer")


def _moving_variance_change(regime):
    base = transfer_learning.build_base(regime, 32, weights=None)
    model = transfer_learning.build_transfer_model(base, transfer_learning.build_head(1280, 2), regime)
    if regime != "scratch":
        transfer_learning.unfreeze_top(base, "block_16_expand")
    bn = base.get_layer("Conv_1_bn")
    before = keras.ops.convert_to_numpy(bn.moving_variance).copy()
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(8, 32, 32, 3)).astype("float32") * 3 + 1
    model.fit(x, np.arange(8) % 2, epochs=1, batch_size=8, verbose=0)
    return np.abs(keras.ops.convert_to_numpy(bn.moving_variance) - before).max()


def test_batchnorm_statistics_kept_when_fine_tuning_and_learnt_from_scratch():
    # training=False keeps the (ImageNet) running statistics even for unfrozen layers; from
    # scratch the base follows the training flag, so one step moves them.
    assert _moving_variance_change("fine_tuning") < 1e-9
    assert _moving_variance_change("scratch") > 1e-6


def test_extract_features_matches_calling_the_model():
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D()])
    x = np.random.default_rng(1).normal(size=(10, 8, 8, 3)).astype("float32")
    features = transfer_learning.extract_features(model, x, batch_size=3)
    assert features.shape == (10, 4)
    np.testing.assert_allclose(features, keras.ops.convert_to_numpy(model(x, training=False)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_extract_features_rejects_bad_batch_size(bad):
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D()])
    with pytest.raises(ValueError, match="batch_size"):
        transfer_learning.extract_features(model, np.zeros((2, 8, 8, 3)), batch_size=bad)


def test_extract_features_rejects_wrong_image_shape():
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D()])
    with pytest.raises(ValueError, match="images"):
        transfer_learning.extract_features(model, np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="images"):
        transfer_learning.extract_features(model, np.zeros((2, 9, 8, 3)))


def test_multiply_adds_hand_count():
    model = keras.Sequential(
        [
            keras.Input((10, 10, 3)),
            keras.layers.Conv2D(8, 3, padding="same"),  # 10*10*3*3*3*8 = 21600
            keras.layers.DepthwiseConv2D(3),  # 8*8*3*3*8 = 4608
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(5),  # 8*5 = 40
        ]
    )
    assert transfer_learning.multiply_adds(model) == 21600 + 4608 + 40


def test_mobilenet_v2_cost_matches_the_paper():
    net = keras.applications.MobileNetV2(weights=None, include_top=True, input_shape=(224, 224, 3))
    assert 0.29e9 < transfer_learning.multiply_adds(net) < 0.31e9  # Sandler et al. (2018): 300M multiply-adds
    assert 3.4e6 < net.count_params() < 3.6e6


def test_epoch_history_records_and_continues():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    x, y = np.zeros((4, 3), "float32"), np.array([0, 1, 0, 1])
    recorder = transfer_learning.EpochHistory("run", validate=lambda: {"extra": 1.0})
    model.fit(x, y, epochs=2, verbose=0, callbacks=[recorder])
    history = recorder.history_
    assert isinstance(history, History) and list(history.series("loss")[0]) == [1.0, 2.0]
    assert history.last("extra") == 1.0
    more = transfer_learning.EpochHistory("run", history, step_offset=2)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[more])
    steps, seconds = history.series("seconds")
    assert list(steps) == [1.0, 2.0, 3.0] and np.all(np.diff(seconds) >= 0)


def test_plot_misclassified():
    import matplotlib

    matplotlib.use("Agg")
    images = np.zeros((5, 4, 4, 3), np.uint8)
    labels, predictions = np.array([0, 1, 0, 1, 0]), np.array([0, 0, 1, 1, 0])
    fig = transfer_learning.plot_misclassified(images, labels, predictions, ["a", "b"], probabilities=np.full((5, 2), 0.5))
    assert len([ax for ax in fig.axes if ax.images]) == 2
    assert transfer_learning.plot_misclassified(images, labels, labels, ["a", "b"]) is None
    with pytest.raises(ValueError, match="images"):
        transfer_learning.plot_misclassified(images[0], labels, predictions, ["a", "b"])
    with pytest.raises(ValueError, match="lengths"):
        transfer_learning.plot_misclassified(images, labels[:3], predictions, ["a", "b"])


def test_imagenet_weights_are_the_file_keras_loads_with_its_checksum_verified():
    from companion.data import file_hash

    path = transfer_learning.imagenet_weights(224)
    assert file_hash(path) == transfer_learning.MOBILENET_V2_NO_TOP_SHA256[224]
    ours = transfer_learning.build_base("feature_extraction", 224)
    keras_own = keras.applications.MobileNetV2(input_shape=(224, 224, 3), include_top=False, weights="imagenet")
    for mine, theirs in zip(ours.weights, keras_own.weights):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
