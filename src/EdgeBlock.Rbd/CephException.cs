using System.Runtime.InteropServices;

namespace EdgeBlock.Rbd;

/// <summary>
/// A Ceph call that failed, for management operations (connect, create, open, lock, resize). The message
/// says what was attempted, on what, and librados' or librbd's errno as text; I/O never throws (it
/// completes with a <see cref="EdgeBlock.Storage.BlockStatus"/>).
/// </summary>
public sealed class CephException : Exception
{
    public CephException(string what, int result)
        : base($"{what}: {Describe(result)}")
    {
        Errno = -result;
    }

    public CephException(string message, int result, bool verbatim)
        : base(verbatim ? message : $"{message}: {Describe(result)}")
    {
        Errno = -result;
    }

    /// <summary>The positive errno (ENOENT = 2, ETIMEDOUT = 110, ...).</summary>
    public int Errno { get; }

    /// <summary>strerror of a negative errno result, with the errno name where it helps the reader.</summary>
    public static string Describe(int result) => $"{Marshal.GetPInvokeErrorMessage(-result)} (errno {-result})";

    /// <summary>Throws when result is a negative errno.</summary>
    public static void ThrowIfFailed(int result, string what)
    {
        if (result < 0)
        {
            throw new CephException(what, result);
        }
    }
}
