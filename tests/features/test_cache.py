import torch

from headstart.backbones import build_backbone
from headstart.features.cache import FeatureCache, extract_features
from headstart.data.sources import read_data


def test_second_lookup_never_runs_the_backbone(tmp_path, image_data, counting):
    bb = build_backbone("counting:cnn")
    data = read_data(image_data[0])
    cache = FeatureCache(tmp_path / "c")
    first = cache.features(bb, data)
    assert counting.seen == len(data)
    second = FeatureCache(tmp_path / "c").features(bb, data)
    assert counting.seen == len(data)
    torch.testing.assert_close(first, second)


def test_cached_features_equal_direct_extraction(tmp_path, image_data):
    bb = build_backbone("tiny:cnn")
    data = read_data(image_data[0])
    torch.testing.assert_close(FeatureCache(tmp_path / "c").features(bb, data), extract_features(bb, data))


def test_overlapping_data_computes_only_new_items(tmp_path, image_data, counting):
    bb = build_backbone("counting:cnn")
    data = read_data(image_data[0])
    cache = FeatureCache(tmp_path / "c")
    cache.features(bb, data.subset(range(10)))
    cache.features(bb, data.subset(range(20)))
    assert counting.seen == 20


def test_other_weights_or_preprocessing_get_another_namespace(tmp_path, image_data):
    bb = build_backbone("tiny:cnn")
    data = read_data(image_data[0]).subset(range(4))
    cache = FeatureCache(tmp_path / "c")
    cache.features(bb, data)
    bb.pretrained_cfg.input_size = 48
    cache.features(bb, data)
    with torch.no_grad():
        bb.blocks[0][0].weight.add_(1.0)
    cache.features(bb, data)
    assert cache.computed == 12 and len(list((tmp_path / "c").iterdir())) == 3


def test_torn_shard_is_ignored(tmp_path, image_data):
    bb = build_backbone("tiny:cnn")
    data = read_data(image_data[0]).subset(range(4))
    FeatureCache(tmp_path / "c").features(bb, data)
    ns = next((tmp_path / "c").iterdir())
    (ns / "999-torn.safetensors").write_bytes(b"\x00garbage")
    cache = FeatureCache(tmp_path / "c")
    cache.features(bb, data)
    assert cache.computed == 0 and cache.reused == 4



def test_memory_features_hash_the_weights_once_and_serve_seen_rows_from_memory(tmp_path, image_data, counting):
    from headstart.features.cache import MemoryFeatures

    class Hashes(counting):
        calls = 0

        def weights_hash(self):
            Hashes.calls += 1
            return super().weights_hash()

    bb = Hashes(spec="counting:cnn")
    data = read_data(image_data[0])
    mem = MemoryFeatures(bb, FeatureCache(tmp_path / "c"))
    whole = mem.features(bb, data)
    part = mem.features(bb, data.subset([5, 2, 5]))
    assert counting.seen == len(data) and Hashes.calls == 1  # one pass, one hash, whatever the lookups after
    torch.testing.assert_close(part, whole[[5, 2, 5]])
    torch.testing.assert_close(whole, FeatureCache(tmp_path / "c").features(bb, data))
