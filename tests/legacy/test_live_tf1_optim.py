"""compat.tf1's optimizers against TensorFlow 2.21's tf.compat.v1.train optimizers run live, where the
variables that have a gradient change from step to step (two train ops of one optimizer)."""
from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, note, settings, strategies as st

from compat.tf1 import TFAdam
from tests.tolerances import assert_close


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2 ** 31 - 1), st.lists(st.booleans(), min_size=1, max_size=6))
def test_adam_advances_its_one_beta_power_pair_whichever_variables_have_a_gradient(tf, seed, both):
    """``opt.minimize(loss_ab)`` and ``opt.minimize(loss_a)`` of one AdamOptimizer: b has no gradient under the
    second; TF still advances the optimizer's beta powers, and b's next update reads them."""
    v1 = tf.compat.v1
    rng = np.random.default_rng(seed)
    a0, b0 = rng.normal(size=(3,)), rng.normal(size=(2, 3))
    x = rng.normal(size=(3,))
    graph = tf.Graph()
    with graph.as_default():
        a = v1.get_variable("a", initializer=a0)
        b = v1.get_variable("b", initializer=b0)
        loss_a = v1.reduce_sum(tf.sin(a * x))
        loss_ab = loss_a + v1.reduce_sum(tf.square(tf.linalg.matvec(b, a)))
        opt = v1.train.AdamOptimizer(0.05)
        train_ab, train_a = opt.minimize(loss_ab), opt.minimize(loss_a)
        init = v1.global_variables_initializer()
    with v1.Session(graph=graph) as sess:
        sess.run(init)
        for step in both:
            sess.run(train_ab if step else train_a)
        want_a, want_b = sess.run([a, b])

    pa, pb = torch.nn.Parameter(torch.tensor(a0)), torch.nn.Parameter(torch.tensor(b0))
    port = TFAdam([pa, pb], lr=0.05)
    xt = torch.tensor(x)
    for step in both:
        port.zero_grad(set_to_none=True)
        loss = torch.sin(pa * xt).sum()
        if step:
            loss = loss + torch.square(pb @ pa).sum()
        loss.backward()
        port.step()
    note(f"steps with b's gradient: {both}")
    assert_close(pa.detach().numpy(), want_a)
    assert_close(pb.detach().numpy(), want_b)
