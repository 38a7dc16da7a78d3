import pytest
import torch

from plenox.data.cameras import image_rays
from plenox.data import builtin_scene


@pytest.fixture(scope="module")
def scene():
    return builtin_scene(size=32, n_train=6, n_test=3, seed=1)


def test_deterministic_in_seed(scene):
    again = builtin_scene(size=32, n_train=6, n_test=3, seed=1)
    other = builtin_scene(size=32, n_train=6, n_test=3, seed=2)
    for name in ("train", "test"):
        assert torch.equal(again.splits[name].images, scene.splits[name].images)
        assert torch.equal(again.splits[name].cameras.c2w, scene.splits[name].cameras.c2w)
    assert not torch.equal(other.splits["train"].images, scene.splits["train"].images)


def test_shapes_range_and_metadata(scene):
    assert (scene.name, scene.format, scene.ndc) == ("builtin", "builtin", False)
    assert scene.background == (1.0, 1.0, 1.0)
    assert scene.center == (0, 0, 0) and scene.radius == (1.5, 1.5, 1.5)
    train = scene.splits["train"]
    assert train.images.shape == (6, 32, 32, 3) and train.images.dtype == torch.float32
    assert train.alpha.shape == (6, 32, 32)
    assert len(scene.splits["test"]) == 3
    assert 0 <= train.images.min() and train.images.max() <= 1
    assert 0 <= train.alpha.min() and train.alpha.max() <= 1


def test_images_are_not_blank(scene):
    images, alpha = scene.splits["train"].images, scene.splits["train"].alpha
    covered = (alpha > 0.5).float().mean(dim=(1, 2))
    assert ((covered > 0.15) & (covered < 0.85)).all()  # every view shows the objects and some background
    objects = images[alpha == 1]
    assert objects.std(dim=0).min() > 0.1  # textured and shaded, not flat
    # several distinct hues: the red sphere, green box, blue cylinder
    assert (objects[:, 0] - objects[:, 2] > 0.4).any() and (objects[:, 2] - objects[:, 0] > 0.4).any()
    assert (objects[:, 1] - objects[:, 0] > 0.2).any()


def test_background_is_white_where_rays_miss(scene):
    split = scene.splits["test"]
    empty = split.alpha == 0
    assert empty.any() and (split.images[empty] == 1).all()
    # A ray that never enters the radius-1.5 box cannot hit anything.
    origins, dirs = image_rays(split.cameras, 0)
    o, d = origins.reshape(-1, 3), dirs.reshape(-1, 3)
    t0, t1 = (-1.5 - o) / d, (1.5 - o) / d
    enters = torch.minimum(t0, t1).max(dim=1).values < torch.maximum(t0, t1).min(dim=1).values
    assert (split.alpha[0].reshape(-1)[~enters] == 0).all()
    assert (~enters).any()


def test_cameras_look_at_the_origin_from_distance_four(scene):
    c2w = scene.splits["train"].cameras.c2w
    positions = c2w[:, :3, 3]
    assert torch.allclose(positions.norm(dim=1), torch.full((6,), 4.0))
    assert (positions[:, 2] > 0).all()  # upper hemisphere
    assert torch.allclose(-c2w[:, :3, 2], -positions / 4, atol=1e-6)  # looking at the origin


def test_argument_validation():
    with pytest.raises(ValueError, match="size"):
        builtin_scene(size=4)
    with pytest.raises(ValueError, match="n_test"):
        builtin_scene(n_test=0)
