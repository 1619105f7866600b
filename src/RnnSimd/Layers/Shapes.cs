using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace RnnSimd.Layers;

/// <summary>Shape validation with messages that name the argument and the expected shape.</summary>
internal static class Shapes
{
    public static void Check(int actual, long expected, string name, string shape)
    {
        if (actual != expected) Throw(actual, expected, name, shape, optional: false);
    }

    public static void CheckOptional(int actual, long expected, string name, string shape)
    {
        if (actual != 0 && actual != expected) Throw(actual, expected, name, shape, optional: true);
    }

    /// <summary>c0 / cN / dc0 / dcN: (L*D, B, H) for LSTM (or empty); must be empty for other cells.</summary>
    public static void CheckState(int actual, RecurrentOptions o, int batch, string name)
    {
        if (actual == 0) return;
        if (o.Cell != CellType.Lstm) ThrowNotLstm(name, o.CellName);
        long expected = (long)o.NumLayers * o.Directions * batch * o.HiddenSize;
        if (actual != expected) Throw(actual, expected, name, $"(L*D, B, H) = ({o.NumLayers * o.Directions}, {batch}, {o.HiddenSize})", optional: true);
    }

    public static void CheckLengths(ReadOnlySpan<int> lengths, int steps, int batch)
    {
        if (lengths.IsEmpty) return;
        if (lengths.Length != batch) ThrowLengths($"lengths has {lengths.Length} entries, expected B = {batch}.");
        for (int b = 0; b < lengths.Length; b++)
            if (lengths[b] < 1 || lengths[b] > steps) ThrowLengths($"lengths[{b}] = {lengths[b]} is outside 1..T = 1..{steps}.");
    }

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    private static void Throw(int actual, long expected, string name, string shape, bool optional) =>
        throw new ArgumentException($"{name} has {actual} floats, expected {shape} = {expected}{(optional ? " (or empty)" : "")}.", name);

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowNotLstm(string name, string cell) =>
        throw new ArgumentException($"{name} is only for LSTM; this network is {cell}: pass an empty span.", name);

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowLengths(string message) => throw new ArgumentException(message, "lengths");
}
