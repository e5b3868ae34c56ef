"""Encoder and heads: shapes, the block structure fine-tuning relies on, config round trip."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.learning.models import (ClassifierHead, Encoder, EncoderConfig, MLPHead, batchnorm_layers)


def test_encoder_shapes_and_block_structure():
    config = EncoderConfig(input_dim=7, hidden_dim=16, depth=3, embed_dim=5)
    encoder = Encoder(config)
    assert encoder(torch.randn(9, 7)).shape == (9, 5)
    assert encoder.embed_dim == 5
    assert len(encoder.blocks) == 3
    widths = [(b.linear.in_features, b.linear.out_features) for b in encoder.blocks]
    assert widths == [(7, 16), (16, 16), (16, 5)]
    assert [b.norm.num_features for b in encoder.blocks] == [16, 16, 5]
    assert encoder.batchnorm_layers() == [b.norm for b in encoder.blocks]
    assert all(b.linear.bias is None for b in encoder.blocks)  # BN carries the shift


def test_depth_one_maps_input_to_embedding():
    encoder = Encoder(EncoderConfig(input_dim=4, depth=1, embed_dim=3))
    assert len(encoder.blocks) == 1 and encoder(torch.randn(6, 4)).shape == (6, 3)


def test_residual_blocks_add_their_input():
    config = EncoderConfig(input_dim=4, hidden_dim=8, depth=3, embed_dim=2, residual=True)
    encoder = Encoder(config).eval()
    assert [b.residual for b in encoder.blocks] == [False, True, False]
    middle = encoder.blocks[1]
    with torch.no_grad():
        middle.linear.weight.zero_()
        middle.norm.bias.fill_(-1.0)  # ReLU(BN(0) - 1) = 0: the block is the identity
    x = torch.randn(5, 8)
    assert torch.equal(middle(x), x)
    plain = Encoder(EncoderConfig(input_dim=4, hidden_dim=8, depth=3, embed_dim=2)).eval()
    with torch.no_grad():
        plain.blocks[1].linear.weight.zero_()
        plain.blocks[1].norm.bias.fill_(-1.0)
    assert torch.equal(plain.blocks[1](x), torch.zeros_like(x))


def test_dropout_only_when_asked():
    assert isinstance(Encoder(EncoderConfig(3)).blocks[0].drop, nn.Identity)
    assert isinstance(Encoder(EncoderConfig(3, dropout=0.2)).blocks[0].drop, nn.Dropout)


def test_config_round_trip_and_validation():
    config = EncoderConfig(input_dim=11, hidden_dim=32, depth=2, embed_dim=8, dropout=0.1,
                           residual=True)
    assert EncoderConfig.from_dict(config.to_dict()) == config
    assert EncoderConfig.from_dict({**config.to_dict(), "unrelated": 1}) == config
    for bad in ({"depth": 0}, {"hidden_dim": 0}, {"dropout": 1.0}):
        with pytest.raises(ValueError):
            EncoderConfig(input_dim=3, **bad)


def test_heads():
    head = MLPHead(8, 16, 4, depth=3, last_bn=True)
    out = head.train()(torch.randn(10, 8))
    assert out.shape == (10, 4)
    # the parameter-free output BN standardises each dimension over the batch
    assert torch.allclose(out.mean(0), torch.zeros(4), atol=1e-5)
    assert len(batchnorm_layers(head)) == 3
    assert isinstance(MLPHead(8, 16, 4, depth=1).net[0], nn.Linear)
    logits = ClassifierHead(5)(torch.randn(7, 5))
    assert logits.shape == (7,)


def test_sync_batchnorm_conversion_keeps_the_block_api():
    encoder = nn.SyncBatchNorm.convert_sync_batchnorm(Encoder(EncoderConfig(3, 8, 2, 4)))
    assert len(batchnorm_layers(encoder)) == 2
    assert all(isinstance(b.norm, nn.SyncBatchNorm) for b in encoder.blocks)
