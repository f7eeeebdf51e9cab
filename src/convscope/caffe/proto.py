"""Reading Caffe's model files, the binary .caffemodel and the text .prototxt, without protobuf.

Caffe stores a network as a `NetParameter` protocol buffer: the weights (.caffemodel) in
protobuf's binary *wire format*, the architecture (.prototxt) in protobuf's *text format*. This
module reads both into plain dicts, driven by `MESSAGES` and `ENUMS`: the part of Caffe's public
`caffe.proto` (upstream BVLC field numbers, which published models use) that our layers need.

Why our own reader rather than the `protobuf` package and a generated `caffe_pb2.py`:

- no generated code and no `protoc` build step: the schema is the readable table below, and a
  student can hold it next to caffe.proto line by line;
- we need a small subset of a long .proto, and both formats are simple to read;
- every failure (truncated, corrupt, wrong wire type, unknown enum or field name, bad syntax,
  missing file) becomes one `CaffeFormatError` that says where: byte offset or line:column,
  and the message and field;
- packed float runs (the weights) go straight into NumPy with `np.frombuffer`, one copy.

Dict conventions, the same for both readers:

- keys are caffe.proto's field names; absent fields are absent (no defaults are filled in);
- a `repeated` field is always a list (also with one element); a singular field is a scalar,
  or a dict for a nested message;
- enum values are their names (`"MAX"`, `"ACROSS_CHANNELS"`, V1 types like `"CONVOLUTION"`);
- strings are `str`, bools `bool`, every integer type (int32 ... uint64) `int`;
- `float` fields hold the shortest decimal that rounds to the same float32, so `alpha` reads
  as 0.0001 from the text "0.0001" and from the float32 in a caffemodel alike;
- BlobProto's packed `data`/`diff` are 1-D `np.float32` arrays, `double_data`/`double_diff`
  `np.float64` arrays; BlobShape's `dim` is a list of ints.

The binary reader follows protobuf's rules: unknown field numbers are skipped, repeated numbers
are accepted packed and unpacked, a singular message that occurs twice is merged. A known field
whose wire type does not fit its declared type is an error, and so is an enum number the schema
does not know. The text reader rejects unknown field names and a singular field set twice, as
protobuf's own text parser does.
"""

from convscope.caffe.schema import ENUMS, MESSAGES, CaffeFormatError
from convscope.caffe.text import parse_text, read_prototxt
from convscope.caffe.wire import parse_binary, read_caffemodel

__all__ = [
    "ENUMS",
    "MESSAGES",
    "CaffeFormatError",
    "parse_binary",
    "parse_text",
    "read_caffemodel",
    "read_prototxt",
]


V1_TYPES = {
    "CONVOLUTION": "Convolution",
    "DECONVOLUTION": "Deconvolution",
    "POOLING": "Pooling",
    "RELU": "ReLU",
    "LRN": "LRN",
    "INNER_PRODUCT": "InnerProduct",
    "DROPOUT": "Dropout",
    "SOFTMAX": "Softmax",
    "CONCAT": "Concat",
    "ELTWISE": "Eltwise",
    "SPLIT": "Split",
    "FLATTEN": "Flatten",
}


def layers_of(net_param: dict) -> list[dict]:
    """Current-format layers, or V1 layers with their type names translated."""
    if "layer" in net_param:
        return net_param["layer"]
    converted = []
    for layer in net_param.get("layers", []):
        kind = layer.get("type", "NONE")
        if kind not in V1_TYPES:
            raise CaffeFormatError(
                f"layer {layer.get('name')!r}: unsupported V1 layer type {kind}; supported: "
                + ", ".join(V1_TYPES)
            )
        converted.append({**layer, "type": V1_TYPES[kind]})
    return converted
