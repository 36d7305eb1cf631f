using System.Diagnostics;
using System.Net.Sockets;

namespace Matrix.SpecTests.Harness;

/// <summary>
/// An S3-compatible store on loopback: npm <c>s3rver</c> (installed into spec-tests/js by the test command), with one
/// bucket. Objects are files under <see cref="DataDir"/>, so tests can see what reached the bucket.
/// </summary>
public sealed class TestS3Server : IAsyncDisposable
{
    public const string Bucket = "media";
    private readonly Process _process;

    public string DataDir { get; } = Directory.CreateTempSubdirectory("hs-s3-").FullName;
    public int Port { get; } = FreePorts.Next();
    public string Endpoint => $"http://127.0.0.1:{Port}";

    /// <summary>The homeserver's <c>media:</c> section for this store (s3rver's fixed credentials).</summary>
    public string MediaYaml => $"""
        media:
          storage: s3
          s3:
            bucket: {Bucket}
            endpoint: {Endpoint}
            region: us-east-1
            access_key_id: S3RVER
            secret_access_key: S3RVER
            force_path_style: true
            key_prefix: "hs/"

        """;

    private TestS3Server()
    {
        var script = Path.Combine(NodeScenario.Directory(), "node_modules", "s3rver", "bin", "s3rver.js");
        if (!File.Exists(script))
            throw new InvalidOperationException("s3rver is not installed: run ./test.sh (npm ci in spec-tests/js)");
        var info = new ProcessStartInfo("node", [script, "-d", DataDir, "-a", "127.0.0.1", "-p", Port.ToString(), "--silent",
            "--configure-bucket", Bucket]) { RedirectStandardOutput = true, RedirectStandardError = true };
        _process = Process.Start(info)!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public static async Task<TestS3Server> StartAsync()
    {
        var server = new TestS3Server();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync("127.0.0.1", server.Port);
                return server;
            }
            catch (SocketException)
            {
                if (server._process.HasExited)
                    break;
                await Task.Delay(100);
            }
        }
        await server.DisposeAsync();
        throw new InvalidOperationException("s3rver did not start");
    }

    /// <summary>Every object's key in the bucket (s3rver keeps each object as a file whose path is its key).</summary>
    public IReadOnlyList<string> ObjectFiles() =>
        Directory.EnumerateFiles(Path.Combine(DataDir, Bucket), "*", SearchOption.AllDirectories)
            .Where(f => !f.EndsWith("._S3rver_metadata.json", StringComparison.Ordinal) && !f.EndsWith("._S3rver_object.md5", StringComparison.Ordinal))
            .ToList();

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        try { Directory.Delete(DataDir, recursive: true); } catch (IOException) { }
    }
}
