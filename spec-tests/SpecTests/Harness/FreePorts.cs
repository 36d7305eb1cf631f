using System.Net;
using System.Net.Sockets;

namespace Matrix.SpecTests.Harness;

/// <summary>
/// Loopback ports for the servers the tests start, taken below the system's ephemeral range: a port there is never
/// picked by anyone's <c>bind(0)</c> or outgoing connection, so a server stopped for an outage finds its port free
/// when it starts again (a listener elsewhere that took it in between would answer in its place). A port is free when
/// asked for but taken only when its server binds it; test classes run in parallel, so a port handed out once is
/// never handed out again, and the benchmarks the suite runs as processes of their own pick from the same range, so a
/// port is also held across processes, by a lock on a file named after it that lasts as long as the process.
/// </summary>
public static class FreePorts
{
    private const int Lowest = 10_000;
    private static readonly HashSet<int> HandedOut = [];
    private static readonly List<FileStream> HeldAcrossProcesses = [];
    private static readonly string LockDirectory = Path.Combine(Path.GetTempPath(), $"matrix-test-ports-{Environment.UserName}");
    private static readonly int EphemeralLow = ReadEphemeralLow();

    public static int Next()
    {
        while (true)
        {
            var port = EphemeralLow > Lowest + 1_000 ? Random.Shared.Next(Lowest, EphemeralLow) : AnyFreePort();
            lock (HandedOut)
                if (!HandedOut.Contains(port) && IsFree(port) && HoldAcrossProcesses(port) && HandedOut.Add(port))
                    return port;
        }
    }

    // .NET takes an exclusive flock(2) for FileShare.None: another process asking for the port fails to open the file
    // until this one exits, however it ends.
    private static bool HoldAcrossProcesses(int port)
    {
        try
        {
            Directory.CreateDirectory(LockDirectory);
            HeldAcrossProcesses.Add(new FileStream(Path.Combine(LockDirectory, $"{port}.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var socket = new TcpListener(IPAddress.Loopback, port);
            socket.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static int AnyFreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }

    private static int ReadEphemeralLow()
    {
        try
        {
            return int.Parse(File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries)[0]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return 0;
        }
    }
}
