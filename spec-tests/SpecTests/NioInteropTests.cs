using System.Diagnostics;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// Two independent crypto implementations through our server: spec-tests/python/nio_interop.py drives matrix-nio
/// (Debian python3-matrix-nio with libolm) against matrix-js-sdk with its Rust crypto (spec-tests/js/js-peer.mjs) in one
/// encrypted room; each must decrypt every message of the other.
/// </summary>
public sealed class NioInteropTests(PostgresServer fixture) : IClassFixture<PostgresServer>
{
    /// <summary>Debian's interpreter, which has python3-matrix-nio; a python3 earlier on the PATH may not.</summary>
    private const string Python = "/usr/bin/python3";

    [Fact]
    public async Task Matrix_nio_and_matrix_js_sdk_decrypt_each_others_messages()
    {
        var script = Path.Combine(NodeScenario.Directory(), "..", "python", "nio_interop.py");
        var info = new ProcessStartInfo(Python, [script, fixture.Server.BaseUrl, "10"]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = await process.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromMinutes(4));
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"nio interop failed (exit {process.ExitCode}):\n{stdout}\n{await stderr}");
        Assert.EndsWith("OK", stdout.TrimEnd());
    }
}
