"""Write small real checkpoints with TensorFlow's own Saver, for the pure-Python reader's tests.

    python legacy/record_tf_checkpoint.py [--out tests/golden/tf_checkpoint]

Writes ``v2/`` (Saver V2: ``model.ckpt-3.index``, ``.data-00000-of-00001`` and a ``checkpoint`` state
file with a relative path, after three Adam steps so slot variables and ``global_step`` are present),
``v1/model.ckpt-3`` (Saver V1, one table file) when this TensorFlow still writes V1, and
``expected.npz``: every tensor as ``tf.train.load_checkpoint`` reads it back, plus the names in order.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from _common import GOLDEN, import_tf, tf_session, versions


def build_and_save(tf, out: Path, seed: int) -> dict:
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)
        with tf.compat.v1.variable_scope("Model"):
            emb = tf.compat.v1.get_variable("embedding", [7, 3], tf.float32)
            w = tf.compat.v1.get_variable("softmax_w", [3, 7], tf.float32)
            b = tf.compat.v1.get_variable("softmax_b", [7], tf.float32, initializer=tf.compat.v1.zeros_initializer())
            d = tf.compat.v1.get_variable("double_scale", [], tf.float64, initializer=tf.compat.v1.constant_initializer(0.25))
            # Non-trainable variables of other dtypes, saved alongside.
            for name, shape, dtype, value in (("counts", [2, 2], tf.int64, -3), ("flags", [3], tf.bool, True),
                                              ("half", [2], tf.float16, 1.5), ("vocab_word", [], tf.string, "thou")):
                tf.compat.v1.get_variable(name, shape, dtype, initializer=tf.compat.v1.constant_initializer(value),
                                          trainable=False)
        global_step = tf.compat.v1.train.get_or_create_global_step()
        ids = tf.constant([[1, 2, 2], [6, 0, 1]])
        logits = tf.matmul(tf.reshape(tf.nn.embedding_lookup(emb, ids), [-1, 3]), w) + b
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.reshape(ids, [-1]), logits=logits)) + tf.cast(d, tf.float32)
        train = tf.compat.v1.train.AdamOptimizer(0.01).minimize(loss, global_step=global_step)
        saver_v2 = tf.compat.v1.train.Saver(save_relative_paths=True)
        try:
            saver_v1 = tf.compat.v1.train.Saver(write_version=tf.compat.v1.train.SaverDef.V1)
        except Exception as exc:  # noqa: BLE001 - recorded in the README
            saver_v1 = None
            print("V1 saver unavailable:", exc)
        with tf_session(tf, graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for _ in range(3):
                sess.run(train)
            (out / "v2").mkdir(parents=True)
            prefix = saver_v2.save(sess, str(out / "v2" / "model.ckpt"), global_step=global_step,
                                  write_meta_graph=False)
            wrote_v1 = False
            if saver_v1 is not None:
                (out / "v1").mkdir()
                try:
                    saver_v1.save(sess, str(out / "v1" / "model.ckpt"), global_step=global_step,
                                  write_state=False, write_meta_graph=False)
                    wrote_v1 = True
                except Exception as exc:  # noqa: BLE001
                    print("V1 save failed:", exc)
                    shutil.rmtree(out / "v1")
    reader = tf.train.load_checkpoint(prefix)
    names = sorted(reader.get_variable_to_shape_map())
    expected = {f"value/{n}": reader.get_tensor(n) for n in names}
    return {"names": names, "expected": expected, "v1": wrote_v1, "prefix": Path(prefix).name}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=GOLDEN / "tf_checkpoint", help="output folder (replaced)")
    parser.add_argument("--seed", type=int, default=7, help="graph-level random seed")
    args = parser.parse_args()
    tf = import_tf()
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    rec = build_and_save(tf, args.out, args.seed)
    arrays = {}
    for k, v in rec["expected"].items():
        v = np.asarray(v)
        arrays[k] = v.astype("S") if v.dtype == object else v
    np.savez(args.out / "expected.npz", names=np.array(rec["names"]), **arrays)
    (args.out / "meta.json").write_text(json.dumps({**versions(), "v1_written": rec["v1"],
                                                    "v2_prefix": rec["prefix"]}, indent=1) + "\n")
    print("wrote", args.out, rec["names"])


if __name__ == "__main__":
    main()
