"""Readers and writers of the legacy file formats, by format, none of which needs its framework installed.

``files``          bounded reads of regular files (the only way the readers open a file)
``shapes``         shapes and element counts checked before an array of that shape exists
``protobuf_wire``  the protobuf binary wire format (Caffe and TF readers share it)
``prototxt``       the protobuf text format (Caffe nets and solvers, TF state files)
``caffemodel``     Caffe ``.caffemodel`` weights
``tf``             TF1 checkpoints: V2 bundles, V1 files, the ``checkpoint`` state file, the writer

What each reader guarantees against hostile files, and its caps, is in docs/security.md.
"""
