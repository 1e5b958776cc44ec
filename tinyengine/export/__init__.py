"""Export to other runtimes: the int8 graph as a bit-exact .tflite, the float model as ONNX; TFLM runner."""
from tinyengine.export.onnx import export_onnx
from tinyengine.export.tflite import export_tflite, tflite_summary

__all__ = ["export_onnx", "export_tflite", "tflite_summary"]
