using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace RnnSimd.Kernels;

/// <summary>Non-inlined throws, so validation on hot paths stays small.</summary>
internal static class ThrowHelper
{
    /// <summary>Throws unless <paramref name="actual"/> equals <paramref name="expected"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void CheckLength(int actual, int expected, string paramName, string what)
    {
        if (actual != expected) ThrowLength(actual, expected, paramName, what, exact: true);
    }

    /// <summary>Throws unless <paramref name="actual"/> is at least <paramref name="expected"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void CheckAtLeast(int actual, long expected, string paramName, string what)
    {
        if (actual < expected) ThrowLength(actual, expected, paramName, what, exact: false);
    }

    /// <summary>Throws unless <paramref name="value"/> is non-negative.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void CheckNonNegative(int value, string paramName)
    {
        if (value < 0) ThrowNegative(value, paramName);
    }

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowLength(int actual, long expected, string paramName, string what, bool exact) =>
        throw new ArgumentException(
            $"{paramName} has {actual} floats, expected {(exact ? "" : "at least ")}{what} = {expected}.", paramName);

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowNegative(int value, string paramName) =>
        throw new ArgumentOutOfRangeException(paramName, value, $"{paramName} must be non-negative.");

    /// <summary>Throws an <see cref="ArgumentException"/> with the given message.</summary>
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void Throw(string paramName, string message) => throw new ArgumentException(message, paramName);
}
