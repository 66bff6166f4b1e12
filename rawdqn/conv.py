"""A VALID convolution whose gradients are forward convolutions, for XLA on the CPU.

    y[n, i, j, o] = Σ_{a,b,c} x[n, s·i + a, s·j + b, c] · K[a, b, c, o]        (cross-correlation)

XLA:CPU runs a forward convolution (NHWC input, HWIO kernel) in Eigen's spatial-convolution
kernel at ~140 GFLOP/s here, but compiles the two convolutions of its gradient (kernel
dimensions swapped, input dilated by the stride) into generic loops: a Nature DQN layer's
gradient is 25–80× slower than its forward pass (bench/conv.py). So each gradient is written
here as a forward convolution, by the equations of backpropagation:

  stride 1:
    ∂L/∂x = conv(pad_{k−1}(∂L/∂y), K̃),   K̃[a, b, o, c] = K[k−1−a, k−1−b, c, o]    (the "full" conv
                                                                  with the flipped kernel)
    ∂L/∂K[a, b, c, o] = Σ_{n,i,j} x[n, i+a, j+b, c] ∂L/∂y[n, i, j, o]
                      = conv(xᵀ, ∂L/∂yᵀ)[c, a, b, o],   xᵀ [C, H, W, N],  ∂L/∂yᵀ [h, w, N, O]

  stride s > 1 is a stride-1 convolution after space-to-depth (no gradient needs a dilation):
    x'[n, i, j, (p, q, c)] = x[n, s·i + p, s·j + q, c]
    K'[a, b, (p, q, c), o] = K[s·a + p, s·b + q, c, o]    (K zero-padded to a multiple of s)
    y = conv_1(x', K'),  and ∂/∂x, ∂/∂K of the reshapes are reshapes (autodiff does them).

On a GPU (cuDNN) and in `tf.function` (TensorFlow's own gradient kernels) `tf.nn.conv2d`'s own
gradient is the faster one; ConvQNetwork's conv_gradients chooses.
"""
import tensorflow as tf


@tf.custom_gradient
def conv2d_stride1(x, kernel):
    """y = conv(x, K), stride 1, VALID; the gradient by two forward convolutions (module docstring)."""
    y = tf.nn.conv2d(x, kernel, 1, "VALID")

    def gradient(dy):
        kh, kw = kernel.shape[0], kernel.shape[1]
        flipped = tf.transpose(kernel[::-1, ::-1], [0, 1, 3, 2])
        dx = tf.nn.conv2d(tf.pad(dy, [[0, 0], [kh - 1, kh - 1], [kw - 1, kw - 1], [0, 0]]), flipped, 1, "VALID")
        dkernel = tf.nn.conv2d(tf.transpose(x, [3, 1, 2, 0]), tf.transpose(dy, [1, 2, 0, 3]), 1, "VALID")
        return dx, tf.transpose(dkernel, [1, 2, 0, 3])

    return y, gradient


def conv2d(x, kernel, stride):
    """y = conv(x, K) with stride s, VALID, x [N, H, W, C], K [kh, kw, C, O] (module docstring)."""
    if stride == 1:
        return conv2d_stride1(x, kernel)
    return conv2d_stride1(space_to_depth_input(x, kernel.shape[:2], stride), space_to_depth_kernel(kernel, stride))


def space_to_depth_input(x, kernel_size, stride):
    """x' [N, H', W', s²C], x'[n, i, j, (p, q, c)] = x[n, s·i + p, s·j + q, c]: the rows no output
    reads cropped, zero rows added to make whole blocks."""
    (kh, kw), (height, width) = kernel_size, x.shape[1:3]
    out_h, out_w = valid_size(height, kh, stride), valid_size(width, kw, stride)
    # x' needs out + blocks − 1 blocks each way, K' being blocks_h × blocks_w.
    rows, cols = stride * (out_h - 1 + -(-kh // stride)), stride * (out_w - 1 + -(-kw // stride))
    x = x[:, :rows, :cols]
    x = tf.pad(x, [[0, 0], [0, rows - min(rows, height)], [0, cols - min(cols, width)], [0, 0]])
    return tf.nn.space_to_depth(x, stride)                                  # channel (p·s + q)·C + c


def space_to_depth_kernel(kernel, stride):
    """K' [⌈kh/s⌉, ⌈kw/s⌉, s²C, O], K'[a, b, (p, q, c), o] = K[s·a + p, s·b + q, c, o] (zero-padded)."""
    kh, kw, channels, filters = kernel.shape
    blocks_h, blocks_w = -(-kh // stride), -(-kw // stride)
    kernel = tf.pad(kernel, [[0, stride * blocks_h - kh], [0, stride * blocks_w - kw], [0, 0], [0, 0]])
    kernel = tf.reshape(kernel, [blocks_h, stride, blocks_w, stride, channels, filters])
    return tf.reshape(tf.transpose(kernel, [0, 2, 1, 3, 4, 5]), [blocks_h, blocks_w, stride * stride * channels, filters])


def conv2d_im2col(x, kernel, stride):
    """y = conv(x, K) with stride s, VALID, as one matrix product (im2col):

        P[(n, i, j), (a, b, c)] = x[n, s·i + a, s·j + b, c]       (the kh·kw strided slices of x, side by side)
        y[(n, i, j), o] = Σ_{(a,b,c)} P[(n, i, j), (a, b, c)] · K[a, b, c, o]

    Its gradients are matrix products and the slices' pads. For small inputs (MinAtar's 10×10
    with few channels) the one product runs faster under XLA on a CPU than either convolution
    form; the patches take kh·kw times the input's memory, so large inputs keep the convolution.
    """
    height, width, channels = x.shape[1:]
    kh, kw, _, filters = kernel.shape
    out_h, out_w = valid_size(height, kh, stride), valid_size(width, kw, stride)
    patches = tf.concat([x[:, a:a + stride * (out_h - 1) + 1:stride, b:b + stride * (out_w - 1) + 1:stride]
                         for a in range(kh) for b in range(kw)], axis=-1)
    y = tf.reshape(patches, [-1, kh * kw * channels]) @ tf.reshape(kernel, [kh * kw * channels, filters])
    return tf.reshape(y, [-1, out_h, out_w, filters])


# Per example: MinAtar's 10×10×C layers (C ≤ 10: ≤ 5,760 values) ran faster as im2col, the Nature
# network's (≥ 28,224) slower (bench/conv_forms.py).
IM2COL_MAX_PATCH_VALUES = 8192
CONV_GRADIENTS = ("tf", "forward", "im2col")   # the forms of a layer: tf.nn.conv2d, conv2d, conv2d_im2col


def convolve(form, x, kernel, stride, data_format="NHWC"):
    """y = conv(x, K), VALID, in `form` (CONV_GRADIENTS; 'forward' and 'im2col' take NHWC)."""
    if form == "tf":
        strides = [1, 1, stride, stride] if data_format == "NCHW" else [1, stride, stride, 1]
        return tf.nn.conv2d(x, kernel, strides, "VALID", data_format=data_format)
    return {"forward": conv2d, "im2col": conv2d_im2col}[form](x, kernel, stride)


def layer_forms(conv_gradients, layers, data_format):
    """One form per conv layer, from one form for all or a tuple of one per layer; ValueError if
    one is unknown, not NHWC where it must be, or the count is wrong."""
    forms = (conv_gradients,) * layers if isinstance(conv_gradients, str) else tuple(conv_gradients)
    if len(forms) != layers or any(form not in CONV_GRADIENTS or (form != "tf" and data_format != "NHWC")
                                   for form in forms):
        raise ValueError(f"conv_gradients must be one of {CONV_GRADIENTS} ('forward' and 'im2col' with NHWC "
                         f"only), or one per conv layer; got {conv_gradients!r} with {data_format}")
    return forms


def valid_size(size, kernel, stride):
    """A VALID conv's output size along one axis: (size − kernel) // stride + 1."""
    return (size - kernel) // stride + 1


def layer_inputs(input_shape, convs):
    """The (H, W, C) each conv layer (filters, size, stride) reads, then the last one's output."""
    shapes = [tuple(int(size) for size in input_shape)]
    for filters, size, stride in convs:
        height, width, _ = shapes[-1]
        shapes.append((valid_size(height, size, stride), valid_size(width, size, stride), int(filters)))
    return shapes


def xla_cpu_form(input_shape, size, stride):
    """The faster form of a layer under XLA on a CPU, by its shape (bench/conv_forms.py): 'im2col'
    where one example's patches hold at most IM2COL_MAX_PATCH_VALUES values, else 'forward'."""
    height, width, channels = input_shape
    out_h, out_w = valid_size(height, size, stride), valid_size(width, size, stride)
    return "im2col" if out_h * out_w * size * size * channels <= IM2COL_MAX_PATCH_VALUES else "forward"


def xla_cpu_forms(input_shape, convs):
    """xla_cpu_form of every conv layer of a network over `input_shape`."""
    return tuple(xla_cpu_form(shape, size, stride)
                 for shape, (_, size, stride) in zip(layer_inputs(input_shape, convs), convs))
