using System.Runtime.InteropServices;

namespace EdgeBlock.Hosting;

/// <summary>
/// A daemon started by a script in the background (<c>nohup ./edgeblock serve &amp;</c>, a shell
/// without job control) inherits SIGHUP and SIGINT as ignored, and the .NET runtime keeps an
/// inherited ignore: SIGHUP would not reload and SIGINT would not stop it. Like sshd and nginx,
/// a server takes back the signals it gives a meaning to, whatever it inherited. Shared source
/// (src/Common): the daemon and the interop test's vhost server both use it.
/// </summary>
internal static partial class InheritedSignals
{
    private const int SigHup = 1, SigInt = 2, SigTerm = 15;
    private static readonly nint SigDfl = 0, SigErr = -1;

    /// <summary>Resets SIGHUP, SIGINT and SIGTERM to their default disposition; call before any handler is registered.</summary>
    public static void Reclaim()
    {
        if (!OperatingSystem.IsLinux()) return;
        foreach (int signal in (ReadOnlySpan<int>)[SigHup, SigInt, SigTerm])
        {
            // Only an ignored signal is reset: a handler already installed (the runtime's) stays.
            nint previous = Signal(signal, SigDfl);
            if (previous != SigErr && previous != IgnoredDisposition) Signal(signal, previous);
        }
    }

    private static readonly nint IgnoredDisposition = 1; // SIG_IGN

    [LibraryImport("libc", EntryPoint = "signal")]
    private static partial nint Signal(int signum, nint handler);
}
