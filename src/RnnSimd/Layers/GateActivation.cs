namespace RnnSimd.Layers;

/// <summary>
/// A gate nonlinearity a recurrent cell can be given in place of its default (ONNX's <c>activations</c> attribute; see
/// <see cref="RecurrentOptions.ActivationF"/>, <see cref="RecurrentOptions.ActivationG"/> and
/// <see cref="RecurrentOptions.ActivationH"/>). Backward takes each derivative from the saved output.
/// </summary>
public enum GateActivation
{
    /// <summary>σ(x) = 1 / (1 + e^-x); σ' = y (1 - y).</summary>
    Sigmoid,
    /// <summary>tanh(x); tanh' = 1 - y^2.</summary>
    Tanh,
    /// <summary>max(x, 0); relu' = 1 where y &gt; 0, else 0 (PyTorch's convention at x = 0).</summary>
    Relu,
}
