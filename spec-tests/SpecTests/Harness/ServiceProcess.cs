using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Matrix.SpecTests.Harness;

/// <summary>Starts a service the tests run beside the homeserver (slapd, Radicale) and waits until it accepts connections.</summary>
public static class ServiceProcess
{
    /// <summary>The started process, once a TCP connection to <paramref name="port"/> succeeds; fails the test with its output otherwise.</summary>
    public static async Task<Process> StartAsync(string file, IEnumerable<string> arguments, int port, string name)
    {
        var process = Process.Start(new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync("127.0.0.1", port);
                return process;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !process.HasExited)
            {
                await Task.Delay(50);
            }
            catch (SocketException)
            {
                lock (output)
                    Assert.Fail($"{name} did not start: {output}");
            }
        }
    }

    /// <summary>Kills the process (an outage, or the end of the test) and waits for it to be gone.</summary>
    public static async Task StopAsync(Process? process)
    {
        if (process is { HasExited: false })
        {
            process.Kill();
            await process.WaitForExitAsync();
        }
        process?.Dispose();
    }
}
