using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// Two independent crypto implementations through our server: spec-tests/python/nio_interop.py drives matrix-nio
/// (Debian python3-matrix-nio with libolm) against matrix-js-sdk with its Rust crypto (spec-tests/js/js-peer.mjs) in one
/// encrypted room; each must decrypt every message of the other.
/// </summary>
public sealed class NioInteropTests(PostgresServer fixture) : IClassFixture<PostgresServer>
{
    [Fact]
    public async Task Matrix_nio_and_matrix_js_sdk_decrypt_each_others_messages()
    {
        var stdout = await PythonScript.RunAsync("nio_interop.py", [fixture.Server.BaseUrl, "10"], TimeSpan.FromMinutes(4));
        Assert.EndsWith("OK", stdout.TrimEnd());
    }
}
