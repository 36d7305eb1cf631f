using System.Runtime.InteropServices;

namespace Matrix.Homeserver.Hosting;

/// <summary>
/// A server started under <c>nohup</c> (or by anything that ignores SIGHUP) inherits SIGHUP ignored, and the runtime
/// then never delivers it to a <see cref="PosixSignalRegistration"/>: SIGHUP would not reload the config. Restoring the
/// default before the runtime sets its signal handling up lets the reload handler take it (as Synapse's does).
/// </summary>
public static partial class HangupDisposition
{
    private const int SigHup = 1;
    private static readonly IntPtr DefaultAction = IntPtr.Zero;

    [LibraryImport("libc", EntryPoint = "signal")]
    private static partial IntPtr SetSignalAction(int signal, IntPtr action);

    public static void RestoreDefault()
    {
        if (OperatingSystem.IsLinux())
            SetSignalAction(SigHup, DefaultAction);
    }
}
