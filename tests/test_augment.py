"""companion.augment: shapes, determinism, identity at zero strength, labels, and scipy.ndimage."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ndimage = pytest.importorskip("scipy.ndimage")

from companion import augment  # noqa: E402


def batch(n=4, shape=(28, 28), seed=0, channels=None):
    rng = np.random.default_rng(seed)
    size = (n, *shape) if channels is None else (n, channels, *shape)
    return rng.random(size).astype(np.float32)


@pytest.mark.parametrize("shape", [(28, 28), (20, 33)])
def test_rotate_matches_scipy(shape):
    images = batch(3, shape)
    angles = np.array([7.5, -30.0, 90.0])
    out = augment.rotate(images, angles)
    for image, angle, mine in zip(images, angles, out):
        expected = ndimage.rotate(image.astype(np.float64), angle, reshape=False, order=1, mode="grid-constant")
        np.testing.assert_allclose(mine, expected, atol=1e-5)


def test_shift_matches_scipy():
    images = batch(3)
    shifts = np.array([[1.0, -2.0], [0.0, 3.0], [-0.4, 0.75]])
    out = augment.shift(images, shifts)
    for image, s, mine in zip(images, shifts, out):
        expected = ndimage.shift(image.astype(np.float64), s, order=1, mode="grid-constant")
        np.testing.assert_allclose(mine, expected, atol=1e-5)


def test_integer_shift_moves_pixels_exactly():
    image = np.zeros((1, 8, 8), dtype=np.float32)
    image[0, 2, 3] = 1.0
    out = augment.shift(image, [[2.0, -1.0]])
    assert out[0, 4, 2] == pytest.approx(1.0, abs=1e-6)
    assert out.sum() == pytest.approx(1.0, abs=1e-5)


def test_rotation_by_90_degrees_is_rot90():
    images = batch(2, (9, 9))
    np.testing.assert_allclose(augment.rotate(images, [90.0, 90.0]), np.rot90(images, k=1, axes=(1, 2)), atol=1e-5)


def test_flip_is_mirror():
    images = batch(2)
    np.testing.assert_array_equal(augment.flip(images), images[:, :, ::-1])
    np.testing.assert_array_equal(augment.flip(images, horizontal=False), images[:, ::-1, :])


@pytest.mark.parametrize("channels", [None, 1, 3])
def test_shapes_types_and_dtypes_are_preserved(channels):
    images = batch(5, channels=channels)
    augmenter = augment.Augmenter(max_degrees=15, max_shift=2, flip_p=0.5, noise_std=0.1, seed=0)
    out = augmenter(images)
    assert isinstance(out, np.ndarray) and out.shape == images.shape and out.dtype == images.dtype
    tensor = torch.from_numpy(images).double()
    out = augment.Augmenter(max_degrees=15, max_shift=2, noise_std=0.1, seed=0)(tensor)
    assert isinstance(out, torch.Tensor) and out.shape == tensor.shape and out.dtype == torch.float64


def test_numpy_and_torch_inputs_give_the_same_batch():
    images = batch(6)
    a = augment.Augmenter(max_degrees=20, max_shift=3, noise_std=0.05, seed=3)(images)
    b = augment.Augmenter(max_degrees=20, max_shift=3, noise_std=0.05, seed=3)(torch.from_numpy(images))
    np.testing.assert_allclose(a, b.numpy(), atol=1e-6)


def test_same_seed_same_batch_and_different_seed_different_batch():
    images = batch(8)
    kwargs = dict(max_degrees=15, max_shift=2, noise_std=0.1)
    a = augment.Augmenter(**kwargs, seed=1)(images)
    b = augment.Augmenter(**kwargs, seed=1)(images)
    c = augment.Augmenter(**kwargs, seed=2)(images)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    for fn, arg in [(augment.random_rotation, 10.0), (augment.random_shift, 2.0), (augment.add_gaussian_noise, 0.2)]:
        np.testing.assert_array_equal(fn(images, arg, 7), fn(images, arg, np.random.default_rng(7)))
    # Successive calls of one augmenter draw fresh parameters.
    augmenter = augment.Augmenter(**kwargs, seed=1)
    assert not np.allclose(augmenter(images), augmenter(images))


def test_zero_strength_is_the_identity():
    images = batch(4)
    np.testing.assert_array_equal(augment.Augmenter(seed=0)(images), images)
    np.testing.assert_array_equal(augment.random_rotation(images, 0.0, 0), images)
    np.testing.assert_array_equal(augment.random_shift(images, 0.0, 0), images)
    np.testing.assert_array_equal(augment.add_gaussian_noise(images, 0.0, 0), images)
    np.testing.assert_array_equal(augment.random_flip(images, 0.0, 0), images)
    np.testing.assert_array_equal(augment.random_flip(images, 1.0, 0), images[:, :, ::-1])
    # Outputs are new arrays: the caller's batch is never modified.
    out = augment.Augmenter(seed=0)(images)
    out[0, 0, 0] = 123.0
    assert images[0, 0, 0] != 123.0


def test_noise_statistics_and_clip():
    images = np.full((200, 28, 28), 0.5, dtype=np.float32)
    noisy = augment.add_gaussian_noise(images, 0.1, 0)
    assert abs(float((noisy - images).std()) - 0.1) < 0.002
    assert abs(float((noisy - images).mean())) < 0.002
    clipped = augment.add_gaussian_noise(images, 1.0, 0, clip=(0.0, 1.0))
    assert clipped.min() >= 0.0 and clipped.max() <= 1.0


def test_labels_are_preserved_and_images_stay_in_place():
    # Smooth random images (like digits, unlike white noise, they survive a small rotation).
    images = ndimage.gaussian_filter(batch(16), sigma=(0, 2, 2))
    images = 0.5 + 0.3 * (images - images.mean(axis=(1, 2), keepdims=True)) / images.std(axis=(1, 2), keepdims=True)
    labels = np.arange(16)
    out, out_labels = augment.Augmenter(max_degrees=10, max_shift=1, noise_std=0.02, seed=0)(images, labels)
    assert out_labels is labels
    # Each augmented image still correlates best with its own original (same index).
    flat_in = images.reshape(16, -1) - images.reshape(16, -1).mean(axis=1, keepdims=True)
    flat_out = out.reshape(16, -1) - out.reshape(16, -1).mean(axis=1, keepdims=True)
    assert np.array_equal((flat_out @ flat_in.T).argmax(axis=1), labels)
    with pytest.raises(ValueError, match="labels"):
        augment.Augmenter(seed=0)(images, labels[:3])


def test_random_parameters_stay_in_range():
    # A single bright pixel at the centre of a large image never moves farther than max_pixels.
    image = np.zeros((50, 41, 41), dtype=np.float32)
    image[:, 20, 20] = 1.0
    out = augment.random_shift(image, 3.0, 0)
    rows, cols = np.indices((41, 41))
    mass = out.sum(axis=(1, 2))
    centre_r = (out * rows).sum(axis=(1, 2)) / mass
    centre_c = (out * cols).sum(axis=(1, 2)) / mass
    assert np.all(np.abs(centre_r - 20) <= 3 + 1e-4) and np.all(np.abs(centre_c - 20) <= 3 + 1e-4)
    assert np.abs(centre_r - 20).max() > 2  # and actually uses the range


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda x: augment.random_rotation(x, 181.0, 0), "max_degrees"),
        (lambda x: augment.random_rotation(x, -1.0, 0), "max_degrees"),
        (lambda x: augment.add_gaussian_noise(x, -0.1, 0), "std"),
        (lambda x: augment.random_flip(x, 1.5, 0), "p"),
        (lambda x: augment.random_shift(x, -1.0, 0), "max_pixels"),
        (lambda x: augment.random_shift(x, 28.0, 0), "max_pixels"),
        (lambda x: augment.rotate(x, [1.0, 2.0]), "angles"),
        (lambda x: augment.shift(x, [[1.0]] * 4), "shifts"),
        (lambda x: augment.add_gaussian_noise(x, 0.1, 0, clip=(1.0, 0.0)), "clip"),
        (lambda x: augment.Augmenter(noise_std=-1.0), "noise_std"),
        (lambda x: augment.Augmenter(max_degrees=200.0), "max_degrees"),
        (lambda x: augment.Augmenter(flip_p=-0.1), "flip_p"),
        (lambda x: augment.rotate(x[0], [0.0] * 28), "images"),
        (lambda x: augment.rotate(x[None, None], [0.0]), "images"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call(batch(4))


def test_bad_types_raise_type_error():
    with pytest.raises(TypeError, match="images"):
        augment.flip([[1.0, 2.0]])
    with pytest.raises(TypeError, match="images"):
        augment.flip(np.zeros((2, 4, 4), dtype=np.uint8))
    with pytest.raises(TypeError, match="generator"):
        augment.random_rotation(batch(2), 10.0, None)


def test_training_with_an_augmenter_as_transform_records_history():
    from companion.training import mlp, train_classifier

    torch.manual_seed(0)
    x = torch.rand(64, 1, 28, 28)
    y = torch.randint(0, 10, (64,))
    model = mlp((784, 16, 10))
    history = train_classifier(
        model, torch.optim.SGD(model.parameters(), lr=0.1), x, y, transform=augment.Augmenter(10, 1, seed=0),
        x_val=x, y_val=y, epochs=2, batch_size=32, progress=False,
    )
    assert len(history.series("loss")[1]) == 4 and len(history.series("val_accuracy")[1]) == 2


def test_augmented_images_is_a_deterministic_per_item_dataset_for_dataloader():
    torch = pytest.importorskip("torch")
    from companion.augment import AugmentedImages

    gen = np.random.default_rng(0)
    images, labels = gen.random((20, 8, 8)), np.arange(20)
    data = AugmentedImages(images, labels, max_degrees=15.0, max_shift=2.0, seed=3)
    x, y = data[5]
    again, _ = AugmentedImages(images, labels, max_degrees=15.0, max_shift=2.0, seed=3)[5]
    assert x.dtype == np.float32 and y == 5 and np.array_equal(x, again)
    assert not np.array_equal(x, AugmentedImages(images, labels, seed=4)[5][0])
    # the draw is an angle within the limit and a shift within the limit, applied as one affine map
    draw = np.random.default_rng((3, 5))
    angle, offsets = draw.uniform(-15, 15, 1), draw.uniform(-2, 2, (1, 2))
    assert abs(angle[0]) <= 15 and np.all(np.abs(offsets) <= 2)
    identity = AugmentedImages(images, labels, max_degrees=0.0, max_shift=0.0)
    np.testing.assert_allclose(identity[7][0], images[7], atol=1e-6)
    # through a DataLoader with 0 and 2 workers: the same batches
    batches = []
    for workers in (0, 2):
        loader = torch.utils.data.DataLoader(data, batch_size=8, num_workers=workers)
        batches.append([b[0] for b in loader])
    for a, b in zip(*batches):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="labels"):
        AugmentedImages(images, labels[:3])
    with pytest.raises(ValueError, match="max_degrees"):
        AugmentedImages(images, labels, max_degrees=-1.0)
    with pytest.raises(IndexError):
        data[20]
