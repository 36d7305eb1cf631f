using System.Net;
using System.Net.Sockets;

namespace Matrix.SpecTests.Harness;

/// <summary>
/// Loopback ports for the servers the tests start. A port is free when asked for but taken only when its server
/// binds it; test classes run in parallel, so a port handed out once is never handed out again (the system would
/// offer the same one to the next caller until the first server binds it).
/// </summary>
public static class FreePorts
{
    private static readonly HashSet<int> HandedOut = [];

    public static int Next()
    {
        while (true)
        {
            using var socket = new TcpListener(IPAddress.Loopback, 0);
            socket.Start();
            var port = ((IPEndPoint)socket.LocalEndpoint).Port;
            lock (HandedOut)
                if (HandedOut.Add(port))
                    return port;
        }
    }
}
