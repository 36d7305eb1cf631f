using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Matrix.SpecTests.Harness;

/// <summary>A real homeserver process on a free loopback port, with its own data directory and config.</summary>
public sealed class HomeserverProcess : IAsyncDisposable
{
    private readonly string _configPath;
    private readonly string _configHead;
    private readonly Dictionary<string, string> _sections;
    private readonly StringBuilder _output = new();
    private readonly List<string> _standardOutput = [];
    private Process? _process;

    public string DataDir { get; }
    public int Port { get; }
    public string BaseUrl => $"http://127.0.0.1:{Port}";
    public string ServerName { get; }
    public string Output { get { lock (_output) return _output.ToString(); } }
    /// <summary>The lines the server wrote to standard output only (its log), in order.</summary>
    public IReadOnlyList<string> StandardOutputLines { get { lock (_output) return _standardOutput.ToList(); } }
    /// <summary>The port of the listener serving only <c>metrics</c>, when asked for one.</summary>
    public int? MetricsPort { get; }

    /// <summary>The server's operating-system process, for benchmarks that watch it like any other server's.</summary>
    public int ProcessId => _process!.Id;

    /// <summary>The server process's CPU time so far (user and system), for benchmarks' CPU cost per operation.</summary>
    public TimeSpan CpuTime()
    {
        _process!.Refresh();
        return _process.TotalProcessorTime;
    }

    /// <summary>The server's resident memory now, from <c>/proc</c>.</summary>
    public long ResidentBytes()
    {
        var line = File.ReadLines($"/proc/{_process!.Id}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
    }

    /// <param name="databaseYaml">the <c>database:</c> section of the config</param>
    /// <param name="extraYaml">top-level config sections added to (or replacing) the test defaults</param>
    /// <param name="addressAsServerName">use <c>127.0.0.1:&lt;port&gt;</c> as the server name, so other instances can reach it (federation tests)</param>
    /// <param name="tls">when given, federation gets its own HTTPS listener with a certificate from this test CA, and the
    /// server name is that listener's address; the plain listener then serves only the client API</param>
    /// <param name="metricsListener">add a listener (on <see cref="MetricsPort"/>) whose only resource is <c>metrics</c></param>
    /// <param name="listenerYaml">more options of the (first) listener, indented as its keys, e.g. its resources</param>
    /// <param name="serverName">the server name, when this process is one of a deployment behind a load balancer</param>
    public HomeserverProcess(string databaseYaml, string extraYaml = "", bool addressAsServerName = false, TestCertificates? tls = null,
        bool metricsListener = false, string listenerYaml = "", string? serverName = null)
    {
        DataDir = Directory.CreateTempSubdirectory("hs-spec-").FullName;
        Port = FreePorts.Next();
        var listeners = $"listeners:\n  - bind_address: 127.0.0.1\n    port: {Port}\n{listenerYaml}";
        ServerName = serverName ?? (addressAsServerName ? $"127.0.0.1:{Port}" : "spec.test");
        if (tls is not null)
        {
            var federationPort = FreePorts.Next();
            var (certificate, key) = tls.IssueForLoopback(DataDir);
            ServerName = $"127.0.0.1:{federationPort}";
            listeners = $"listeners:\n  - bind_address: 127.0.0.1\n    port: {Port}\n    resources: [client]\n" +
                $"  - bind_address: 127.0.0.1\n    port: {federationPort}\n    resources: [federation]\n" +
                $"    tls_certificate_path: {certificate}\n    tls_private_key_path: {key}\n";
            extraYaml = $"federation:\n  trusted_ca_file: {tls.CaPath}\n\n" + extraYaml;
        }
        if (metricsListener)
        {
            MetricsPort = FreePorts.Next();
            listeners += $"  - bind_address: 127.0.0.1\n    port: {MetricsPort}\n    resources: [metrics]\n";
        }
        _configPath = Path.Combine(DataDir, "homeserver.yaml");
        _sections = new Dictionary<string, string>
        {
            ["logging"] = "logging:\n  level: Warning\n",
            ["registration"] = "registration:\n  enabled: true\n  shared_secret: spec-test-shared-secret-0123456789\n",
            ["auth"] = "auth:\n  password_hashing:\n    ops_limit: 1\n    mem_limit_kib: 64\n  login_via_existing_session: true\n",
            ["rate_limits"] = """
                rate_limits:
                  login: { per_second: 1000, burst: 1000 }
                  registration: { per_second: 1000, burst: 1000 }
                  client_requests: { per_second: 1000, burst: 1000 }

                """,
            ["limits"] = "limits:\n  max_json_body_bytes: 65536\n",
        };
        _configHead = $"""
            server_name: "{ServerName}"
            data_dir: {DataDir}
            {listeners}{databaseYaml}

            """;
        UpdateConfig(extraYaml);
    }

    /// <summary>Adds (or replaces) top-level config sections and rewrites the file; a running server sees it on SIGHUP.</summary>
    public void UpdateConfig(string extraYaml)
    {
        foreach (var section in extraYaml.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
            _sections[section.TrimStart().Split(':')[0]] = section.TrimEnd() + "\n";
        File.WriteAllText(_configPath, _configHead + string.Concat(_sections.Values));
    }

    public static string HomeserverDll()
    {
        if (Environment.GetEnvironmentVariable("HOMESERVER_DLL") is { Length: > 0 } configured)
            return configured;
        var dir = RepositoryRoot.Find() ?? throw new InvalidOperationException("set HOMESERVER_DLL to the built Homeserver.dll");
        return new[] { "Release", "Debug" }
            .Select(c => Path.Combine(dir.FullName, "src", "Homeserver", "bin", c, "net10.0", "Homeserver.dll"))
            .Where(File.Exists).OrderByDescending(File.GetLastWriteTimeUtc).FirstOrDefault()
            ?? throw new InvalidOperationException("build src/Homeserver first, or set HOMESERVER_DLL");
    }

    public bool IsRunning => _process is { HasExited: false };

    /// <summary>Environment variables every server process started gets beside the inherited ones (benchmarks: GC settings).</summary>
    public static Dictionary<string, string> ServerEnvironment { get; } = [];

    public async Task StartAsync()
    {
        // A second process would find the port taken and exit, while the first answered for it and was never stopped.
        if (IsRunning)
            throw new InvalidOperationException("the homeserver is running already");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(HomeserverDll());
        info.ArgumentList.Add("--config");
        info.ArgumentList.Add(_configPath);
        foreach (var (name, value) in ServerEnvironment)
            info.Environment[name] = value;
        _process = Process.Start(info)!;
        _process.OutputDataReceived += (_, e) =>
        {
            lock (_output)
            {
                _output.AppendLine(e.Data);
                if (e.Data is not null)
                    _standardOutput.Add(e.Data);
            }
        };
        _process.ErrorDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"homeserver exited with {_process.ExitCode}:\n{Output}");
            try
            {
                if ((await http.GetAsync($"{BaseUrl}/health")).StatusCode == HttpStatusCode.OK)
                    return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(100);
        }
        throw new TimeoutException($"homeserver did not start:\n{Output}");
    }

    /// <summary>Runs the server binary with a command-line verb against this instance's config; returns exit code and output.</summary>
    public async Task<(int ExitCode, string Output)> RunCliAsync(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(HomeserverDll());
        foreach (var arg in args)
            info.ArgumentList.Add(arg == "{config}" ? _configPath : arg);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>Every endpoint the server serves, as its <c>routes</c> command lists them (method and path template).</summary>
    public async Task<List<(string Method, string Template)>> RoutesAsync()
    {
        var (exitCode, output) = await RunCliAsync("routes", "--config", "{config}");
        Assert.True(exitCode == 0, output);
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => line.Split(' ', 2)).Where(parts => parts.Length == 2 && parts[1].StartsWith('/'))
            .Select(parts => (parts[0], parts[1])).ToList();
    }

    /// <summary>SIGKILL: the process gets no chance to flush or shut down cleanly.</summary>
    public async Task KillAsync()
    {
        if (_process is null || _process.HasExited)
            return;
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
    }

    /// <summary>A normal shutdown (SIGTERM), as an operator's service manager would do it.</summary>
    public async Task StopAsync()
    {
        if (_process is null || _process.HasExited)
            return;
        Signal("TERM");
        if (!await WaitForExitAsync(TimeSpan.FromSeconds(20)))
            _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
    }

    /// <summary>Sends a signal (TERM, HUP, ...) to the server process.</summary>
    public void Signal(string name) => Process.Start("kill", [$"-{name}", _process!.Id.ToString()])!.WaitForExit();

    /// <summary>Whether the process exited by itself within <paramref name="limit"/>; its output is then complete.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan limit)
    {
        using var timeout = new CancellationTokenSource(limit);
        try
        {
            await _process!.WaitForExitAsync(timeout.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public int ExitCode => _process!.ExitCode;

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        try { Directory.Delete(DataDir, recursive: true); } catch (IOException) { }
    }
}
