using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;
using Matrix.Federation.Transport;

namespace Matrix.Federation.Tests;

/// <summary>X-Matrix request signatures, SRV answer parsing and server name resolution.</summary>
public sealed class TransportTests
{
    [Fact]
    public void X_matrix_headers_round_trip_and_detect_any_change()
    {
        var key = Ed25519KeyPair.Generate("k1");
        var body = new JsonObject { ["a"] = 1 };
        var header = XMatrix.Sign("PUT", "/_matrix/federation/v1/send/1", "origin.test", "dest.test", body, key);
        Assert.True(XMatrix.TryParse(header, out var parsed));
        Assert.Equal(("origin.test", "dest.test", "ed25519:k1"), (parsed.Origin, parsed.Destination, parsed.KeyId));
        Assert.True(XMatrix.Verify(parsed, "PUT", "/_matrix/federation/v1/send/1", "dest.test", body, key.PublicKey));
        Assert.False(XMatrix.Verify(parsed, "POST", "/_matrix/federation/v1/send/1", "dest.test", body, key.PublicKey));
        Assert.False(XMatrix.Verify(parsed, "PUT", "/_matrix/federation/v1/send/2", "dest.test", body, key.PublicKey));
        Assert.False(XMatrix.Verify(parsed, "PUT", "/_matrix/federation/v1/send/1", "dest.test", new JsonObject { ["a"] = 2 }, key.PublicKey));
        Assert.False(XMatrix.Verify(parsed, "PUT", "/_matrix/federation/v1/send/1", "other.test", body, key.PublicKey));
    }

    [Theory]
    [InlineData("X-Matrix origin=o.test,key=\"ed25519:1\",sig=\"abc\"", true)]
    [InlineData("X-Matrix key=\"ed25519:1\",sig=\"abc\",origin=\"o.test\",destination=\"d.test\"", true)]
    [InlineData("X-Matrix origin=\"o.test\",sig=\"abc\"", false)]
    [InlineData("Bearer abc", false)]
    [InlineData("X-Matrix garbage", false)]
    public void X_matrix_header_parsing(string header, bool valid) => Assert.Equal(valid, XMatrix.TryParse(header, out _));

    /// <summary>A DNS response for _matrix-fed._tcp.example.org with two SRV answers, the second using name compression.</summary>
    private static byte[] SrvResponse()
    {
        var message = new List<byte>();
        void U16(int v) { message.Add((byte)(v >> 8)); message.Add((byte)v); }
        void Name(params string[] labels)
        {
            foreach (var label in labels) { message.Add((byte)label.Length); message.AddRange(Encoding.ASCII.GetBytes(label)); }
            message.Add(0);
        }
        U16(0x1234); U16(0x8180); U16(1); U16(2); U16(0); U16(0);
        Name("_matrix-fed", "_tcp", "example", "org"); U16(33); U16(1);
        // answer 1: name pointer to the question, SRV 10 5 8443 matrix.example.org
        U16(0xC00C); U16(33); U16(1); U16(0); U16(300);
        var rdata = new List<byte> { 0, 10, 0, 5, 0x20, 0xFB };
        foreach (var label in new[] { "matrix", "example", "org" }) { rdata.Add((byte)label.Length); rdata.AddRange(Encoding.ASCII.GetBytes(label)); }
        rdata.Add(0);
        U16(rdata.Count); message.AddRange(rdata);
        // answer 2: SRV 5 0 8448 with a target compressed to "example.org" (offset of "example" in the question)
        U16(0xC00C); U16(33); U16(1); U16(0); U16(300);
        U16(8); U16(5); U16(0); U16(8448); U16(0xC000 | (12 + 1 + "_matrix-fed".Length + 1 + "_tcp".Length));
        return message.ToArray();
    }

    [Fact]
    public void Srv_answers_are_parsed_and_ordered_by_priority()
    {
        var records = DnsSrv.Parse(SrvResponse());
        Assert.Equal(2, records.Count);
        Assert.Equal(new SrvRecord(5, 0, 8448, "example.org"), records[0]);
        Assert.Equal(new SrvRecord(10, 5, 8443, "matrix.example.org"), records[1]);
        Assert.Empty(DnsSrv.Parse([1, 2, 3]));
        Assert.Empty(DnsSrv.Parse(SrvResponse()[..40]));
    }

    [Fact]
    public async Task The_system_resolver_is_reachable_through_res_query()
    {
        // ".invalid" never resolves (RFC 2606): the call must bind to glibc and come back empty, not throw.
        Assert.Empty(await DnsSrv.LookupAsync("_matrix-fed._tcp.example.invalid", default));
    }

    private sealed class WellKnownHandler(Func<HttpRequestMessage, HttpResponseMessage> respond) : HttpMessageHandler
    {
        public int Calls;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
        {
            Interlocked.Increment(ref Calls);
            return Task.FromResult(respond(request));
        }
    }

    private static Task<IReadOnlyList<SrvRecord>> NoSrv(string name, CancellationToken ct) => Task.FromResult<IReadOnlyList<SrvRecord>>([]);

    [Fact]
    public async Task Ip_literals_and_explicit_ports_are_used_as_given()
    {
        var resolver = new ServerNameResolver(new HttpClient(new WellKnownHandler(_ => throw new InvalidOperationException("no lookups"))), TimeProvider.System, false, NoSrv);
        Assert.Equal(new ResolvedServer(new Uri("https://127.0.0.1:8448/"), "127.0.0.1"), await resolver.ResolveAsync("127.0.0.1", default));
        Assert.Equal(new ResolvedServer(new Uri("https://[::1]:8008/"), "[::1]:8008"), await resolver.ResolveAsync("[::1]:8008", default));
        Assert.Equal(new ResolvedServer(new Uri("https://example.org:1234/"), "example.org:1234"), await resolver.ResolveAsync("example.org:1234", default));
    }

    [Fact]
    public async Task Well_known_delegation_is_followed_and_cached()
    {
        var handler = new WellKnownHandler(request =>
        {
            Assert.Equal("https://example.org/.well-known/matrix/server", request.RequestUri!.ToString());
            return new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent("{\"m.server\": \"matrix.example.net:443\"}") };
        });
        var resolver = new ServerNameResolver(new HttpClient(handler), TimeProvider.System, false, NoSrv);
        var resolved = await resolver.ResolveAsync("example.org", default);
        Assert.Equal(new ResolvedServer(new Uri("https://matrix.example.net:443/"), "matrix.example.net:443"), resolved);
        await resolver.ResolveAsync("example.org", default);
        Assert.Equal(1, handler.Calls);
    }

    [Fact]
    public async Task Without_delegation_srv_then_port_8448_are_used()
    {
        var notFound = new WellKnownHandler(_ => new HttpResponseMessage(HttpStatusCode.NotFound));
        Task<IReadOnlyList<SrvRecord>> Srv(string name, CancellationToken ct) => Task.FromResult<IReadOnlyList<SrvRecord>>(
            name == "_matrix-fed._tcp.srv.example" ? [new SrvRecord(1, 1, 8999, "host.srv.example.")] : []);
        var resolver = new ServerNameResolver(new HttpClient(notFound), TimeProvider.System, false, Srv);
        Assert.Equal(new ResolvedServer(new Uri("https://host.srv.example:8999/"), "srv.example"), await resolver.ResolveAsync("srv.example", default));
        Assert.Equal(new ResolvedServer(new Uri("https://plain.example:8448/"), "plain.example"), await resolver.ResolveAsync("plain.example", default));
        Assert.Equal(new ResolvedServer(new Uri("http://plain.example:8448/"), "plain.example"),
            await new ServerNameResolver(new HttpClient(notFound), TimeProvider.System, true, NoSrv).ResolveAsync("plain.example", default));
    }
}

/// <summary>m.room.server_acl matching.</summary>
public sealed class ServerAclTests
{
    [Theory]
    [InlineData("good.example", true)]
    [InlineData("evil.example", false)]
    [InlineData("sub.evil.example", false)]
    [InlineData("evil.example:8448", false)]
    [InlineData("other.org", false)]
    [InlineData("1.2.3.4", false)]
    [InlineData("[::1]:8448", false)]
    public void Deny_wins_and_only_allowed_hosts_pass(string server, bool allowed)
    {
        var acl = new JsonObject
        {
            ["allow"] = new JsonArray("*.example", "1.2.3.?", "[::1]"),
            ["deny"] = new JsonArray("evil.example", "*.evil.example"),
            ["allow_ip_literals"] = false,
        };
        Assert.Equal(allowed, Matrix.Federation.Rooms.ServerAcl.IsAllowed(server, acl));
    }

    [Fact]
    public void Without_an_acl_everyone_is_allowed_and_ip_literals_default_to_allowed()
    {
        Assert.True(Matrix.Federation.Rooms.ServerAcl.IsAllowed("anything.test", null));
        Assert.True(Matrix.Federation.Rooms.ServerAcl.IsAllowed("127.0.0.1:8448", new JsonObject { ["allow"] = new JsonArray("*") }));
        Assert.False(Matrix.Federation.Rooms.ServerAcl.IsAllowed("a.test", new JsonObject()));
    }
}
