using System.Diagnostics;

namespace Matrix.SpecTests.Harness;

/// <summary>
/// HAProxy (Debian <c>haproxy</c>, installed by the test command) running the repository's reference config,
/// contrib/haproxy/homeserver.cfg, in front of a main process, two sync workers, two event writers, a media worker and a federation reader
/// on loopback.
/// </summary>
public sealed class TestLoadBalancer : IAsyncDisposable
{
    private readonly Process _haproxy;

    public int Port { get; }
    public int ProcessId => _haproxy.Id;
    public string BaseUrl => $"http://127.0.0.1:{Port}";

    private TestLoadBalancer(Process haproxy, int port)
    {
        _haproxy = haproxy;
        Port = port;
    }

    public static async Task<TestLoadBalancer> StartAsync(int port, int main, int sync1, int sync2, int media1, int federationReader1,
        int eventWriter1, int eventWriter2)
    {
        var config = Path.Combine(RepositoryRoot.Find()!.FullName, "contrib", "haproxy", "homeserver.cfg");
        var info = new ProcessStartInfo("haproxy", ["-db", "-f", config]) { RedirectStandardOutput = true, RedirectStandardError = true };
        info.Environment["MATRIX_LISTEN"] = $"127.0.0.1:{port}";
        info.Environment["MATRIX_MAIN"] = $"127.0.0.1:{main}";
        info.Environment["MATRIX_SYNC1"] = $"127.0.0.1:{sync1}";
        info.Environment["MATRIX_SYNC2"] = $"127.0.0.1:{sync2}";
        info.Environment["MATRIX_MEDIA1"] = $"127.0.0.1:{media1}";
        info.Environment["MATRIX_FEDERATION_READER1"] = $"127.0.0.1:{federationReader1}";
        info.Environment["MATRIX_EVENT_WRITER1"] = $"127.0.0.1:{eventWriter1}";
        info.Environment["MATRIX_EVENT_WRITER2"] = $"127.0.0.1:{eventWriter2}";
        var process = Process.Start(info)!;
        var output = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                if ((await http.GetAsync($"http://127.0.0.1:{port}/_matrix/client/versions")).IsSuccessStatusCode)
                    return new TestLoadBalancer(process, port);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { }
            if (process.HasExited || DateTime.UtcNow > deadline)
                lock (output)
                    Assert.Fail($"haproxy did not start: {output}");
            await Task.Delay(100);
        }
    }

    public async ValueTask DisposeAsync() => await ServiceProcess.StopAsync(_haproxy);
}
