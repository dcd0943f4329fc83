"""Input strategies for every op, keyed by op name (imports hypothesis).

``INPUTS[op]`` is a hypothesis strategy of ``(args, params)``: the positional float64 /
int arrays for the op's forward (or update) and its keyword hyper-parameters. One
module per family, merged here; the generic tests in tests/ops/test_generic.py draw
from this table, and `refnn coverage` counts an op as gradient-tested when it is here.
"""
from refnn.testing.op_inputs import activation, dense, loss, optim
from refnn.testing.op_inputs import pool
from refnn.testing.op_inputs import conv
from refnn.testing.op_inputs import recurrent
from refnn.testing.op_inputs import channelwise
from refnn.testing.op_inputs import norm
from refnn.testing.op_inputs import sequence, embedding
from refnn.testing.op_inputs import image
from refnn.testing.op_inputs import attention

INPUTS = {**dense.INPUTS, **activation.INPUTS, **loss.INPUTS, **optim.INPUTS, **pool.INPUTS,
          **conv.INPUTS, **norm.INPUTS,
          **channelwise.INPUTS,
          **recurrent.INPUTS,
          **sequence.INPUTS, **embedding.INPUTS,
          **image.INPUTS,
          **attention.INPUTS}
