"""Torch modules for the layers that sit around recurrent layers in legacy models, where a layer's semantics
are not exactly a plain ``torch.nn`` module's (one module per idea):

| module | what |
| --- | --- |
| :mod:`compat.layers.activations` | named activations, the legacy ones included (Keras 1/2's ``hard_sigmoid``) |
| :mod:`compat.layers.conv` | 1-D convolution over channels-last input with ``same`` and ``causal`` padding |
| :mod:`compat.layers.pooling` | 1-D pooling with TF's ``same`` padding; global pooling with a mask |
| :mod:`compat.layers.normalization` | batch normalisation at inference over any axis |
| :mod:`compat.layers.shape` | reshape, permute, flatten and repeat without the batch axis |
| :mod:`compat.layers.merge` | elementwise merges and concatenation of several inputs |
| :mod:`compat.layers.masks` | masks as values: a masking layer, and the operations that make and combine masks |
| :mod:`compat.layers.time_distributed` | a module applied to every step of a sequence |
| :mod:`compat.layers.caffe` | BVLC Caffe's Embed, InnerProduct, Softmax, Reshape, Slice, Concat, Eltwise, Dropout, Split |

Every module takes and returns batch-major tensors (Caffe's take blobs as Caffe holds them); none holds
state beyond its parameters and buffers.
The frameworks' whole-model converters (``compat.frameworks.<name>.layers``) build them with the source
framework's settings; the semantics are each documented with the legacy source they follow.
"""
