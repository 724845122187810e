"""The TF book's sine-curve LSTM regressor (``tf.contrib.learn`` Estimator) in PyTorch, with its numbers.

    from ports.tf_sine import Config, Estimator, book_data, rmse
    config = Config()                                   # the book's constants; input_layout="steps" for ten steps
    data = book_data(config)                            # generate_data over the float32 sine curves
    estimator = Estimator(config, "runs/tf_sine")       # restores the model directory when it holds a model
    estimator.fit(data, steps=3000)                    # fit(train_X, train_y, batch_size=32, steps=3000)
    print("Mean Square Error is: %f" % rmse(estimator.predict(data.test_X), data.test_y))

CLI: ``python -m ports.tf_sine``. See docs/migration/tf1.md ("tf.contrib.learn").
"""
from .config import INPUT_LAYOUTS, MODEL_FIELDS, Config
from .data import SineData, batch_indices, book_data, generate_data
from .model import FullyConnected, SineLSTM, TFVariableError, tf_variable_names
from .train import Estimator, load_checkpoint, make_optimizer, rmse, train_step

__all__ = ["Config", "INPUT_LAYOUTS", "MODEL_FIELDS", "SineData", "batch_indices", "book_data", "generate_data",
           "FullyConnected", "SineLSTM", "TFVariableError", "tf_variable_names", "Estimator", "load_checkpoint",
           "make_optimizer", "rmse", "train_step"]
