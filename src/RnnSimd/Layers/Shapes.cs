using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace RnnSimd.Layers;

/// <summary>Shape validation with messages that name the argument and the expected shape.</summary>
internal static class Shapes
{
    /// <summary>actual must be a*b*c; the message names the dimensions (e.g. "(T, B, I)") with their values.</summary>
    public static void Check(int actual, string name, string dims, int a, int b, int c = 1, bool optional = false)
    {
        long expected = (long)a * b * c;
        if (actual != expected && !(optional && actual == 0)) Throw(actual, name, dims, a, b, c, optional);
    }

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    private static void Throw(int actual, string name, string dims, int a, int b, int c, bool optional)
    {
        string values = dims.Count(ch => ch == ',') == 1 ? $"({a}, {b})" : $"({a}, {b}, {c})";
        Throw(actual, (long)a * b * c, name, $"{dims} = {values}", optional);
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
