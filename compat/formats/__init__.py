"""Readers and writers of the legacy file formats, by format, none of which needs its framework installed.

``files``          bounded reads of regular files (the only way the readers open a file)
``shapes``         shapes and element counts checked before an array of that shape exists
``protobuf_wire``  the protobuf binary wire format (Caffe and TF readers share it)
``prototxt``       the protobuf text format (Caffe nets and solvers, TF state files)
``caffemodel``     Caffe ``.caffemodel`` weights
``tf``             TF1 checkpoints: V2 bundles, V1 files, the ``checkpoint`` state file, the writer
``keras``          Keras 1/2/3 model files (``.h5`` via h5py, ``.keras`` zips): configuration and weights
``onnx``           ONNX models' ``LSTM`` nodes (via the ``onnx`` package, parsing only)
``npz``            ``.npz`` archives, member by member
``pickles``        pickles scanned before anything is unpickled

What each reader guarantees against hostile files, and its caps, is in docs/security.md.
"""
