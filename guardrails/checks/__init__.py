"""Data-quality suites, Parquet audits and ONNX checks; importing registers them."""
