using System.Diagnostics;

namespace Matrix.SpecTests.Harness;

/// <summary>
/// A private Redis server (Debian <c>redis-server</c>, installed by the test command) on a free loopback port, keeping
/// nothing on disk. It can be stopped and started again on the same port (an outage).
/// </summary>
public sealed class TestRedisServer : IAsyncDisposable
{
    private Process? _redis;

    public int Port { get; } = FreePorts.Next();
    public int ProcessId => _redis!.Id;
    /// <summary>The server's address as the homeserver's <c>worker.redis</c> takes it.</summary>
    public string Configuration => $"127.0.0.1:{Port}";

    public static async Task<TestRedisServer> StartAsync()
    {
        var server = new TestRedisServer();
        await server.RestartAsync();
        return server;
    }

    public async Task RestartAsync() =>
        _redis = await ServiceProcess.StartAsync("redis-server",
            ["--port", Port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"], Port, "redis-server");

    /// <summary>Kills the server (an outage).</summary>
    public Task StopAsync() => ServiceProcess.StopAsync(_redis);

    public async ValueTask DisposeAsync() => await StopAsync();
}
