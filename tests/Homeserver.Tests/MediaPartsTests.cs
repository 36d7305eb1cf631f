using System.Net;
using System.Text;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Media;

namespace Matrix.Homeserver.Tests;

public sealed class MediaPartsTests
{
    [Theory]
    [InlineData("image/png", "a.png", "inline; filename=\"a.png\"")]
    [InlineData("IMAGE/PNG; foo=bar", null, "inline")]
    [InlineData("text/html", "x.html", "attachment; filename=\"x.html\"")]
    [InlineData("image/svg+xml", "logo.svg", "attachment; filename=\"logo.svg\"")]
    [InlineData("application/pdf", "Ärger \"1\".pdf", "attachment; filename*=utf-8''%C3%84rger%20%221%22.pdf")]
    public void Dispositions_are_inline_only_for_the_spec_safe_types(string contentType, string? fileName, string expected) =>
        Assert.Equal(expected, MediaResponses.Disposition(contentType, fileName));

    [Theory]
    [InlineData("abcXYZ019_-", true)]
    [InlineData("../etc/passwd", false)]
    [InlineData("a.b", false)]
    [InlineData("", false)]
    [InlineData("%2e%2e", false)]
    public void Media_ids_are_restricted_to_the_spec_alphabet(string mediaId, bool valid) =>
        Assert.Equal(valid, MediaIds.IsValidMediaId(mediaId));

    [Fact]
    public void New_ids_and_storage_keys_are_random_and_valid()
    {
        var ids = Enumerable.Range(0, 100).Select(_ => MediaIds.NewMediaId()).ToHashSet();
        Assert.Equal(100, ids.Count);
        Assert.All(ids, id => Assert.True(MediaIds.IsValidMediaId(id) && id.Length == 32));
        Assert.Matches("^local/[A-Za-z0-9]{2}/[A-Za-z0-9]{2}/[A-Za-z0-9]{24}$", MediaIds.NewStorageKey("local"));
    }

    [Fact]
    public void OpenGraph_tags_win_and_the_page_supplies_fallbacks()
    {
        var page = new Uri("https://example.com/blog/post?id=1");
        var og = OpenGraph.Parse("""
            <html><head><meta charset="utf-8"><title> The &lt;title&gt; </title>
            <meta content='Described' name=description>
            <META PROPERTY="og:site_name" CONTENT="Example">
            </head><body><img src="pics/first.png"><img src="second.png"></body></html>
            """, page);
        Assert.Equal("The <title>", og["og:title"]!.GetValue<string>());
        Assert.Equal("Described", og["og:description"]!.GetValue<string>());
        Assert.Equal("Example", og["og:site_name"]!.GetValue<string>());
        Assert.Equal("https://example.com/blog/pics/first.png", og["og:image"]!.GetValue<string>());

        var explicitOg = OpenGraph.Parse("<meta property=\"og:title\" content=\"OG\"><title>T</title><meta property=\"og:image\" content=\"javascript:alert(1)\">", page);
        Assert.Equal("OG", explicitOg["og:title"]!.GetValue<string>());
        Assert.False(explicitOg.ContainsKey("og:image"));
    }

    [Fact]
    public void Pages_are_decoded_with_their_declared_charset()
    {
        var latin1 = Encoding.Latin1.GetBytes("<meta charset=\"iso-8859-1\"><title>Café</title>");
        Assert.Contains("Café", OpenGraph.Decode(latin1, null));
        Assert.Contains("Café", OpenGraph.Decode(Encoding.UTF8.GetBytes("<title>Café</title>"), "utf-8"));
        Assert.Contains("Caf", OpenGraph.Decode(Encoding.UTF8.GetBytes("<title>Café</title>"), "no-such-charset"));
    }

    [Fact]
    public void The_guard_denies_private_ranges_unless_allowed_and_sees_through_mapped_addresses()
    {
        var config = new HomeserverConfig();
        config.OutboundHttp.IpRangeAllowlist = ["10.1.2.3/32"];
        config.Media.UrlPreview.HostDenylist = ["*.internal.example", "exact.example"];
        using var guard = new GuardedHttp(config);
        Assert.False(guard.IsAllowed(IPAddress.Loopback));
        Assert.False(guard.IsAllowed(IPAddress.IPv6Loopback));
        Assert.False(guard.IsAllowed(IPAddress.Parse("::ffff:127.0.0.1")));
        Assert.False(guard.IsAllowed(IPAddress.Parse("169.254.169.254")));
        Assert.False(guard.IsAllowed(IPAddress.Parse("fd00::1")));
        Assert.False(guard.IsAllowed(IPAddress.Parse("10.1.2.4")));
        Assert.True(guard.IsAllowed(IPAddress.Parse("10.1.2.3")));
        Assert.True(guard.IsAllowed(IPAddress.Parse("93.184.216.34")));
        Assert.True(guard.IsAllowed(IPAddress.Parse("2606:2800:220:1::1")));
        Assert.True(guard.IsHostDenied("wiki.internal.example"));
        Assert.True(guard.IsHostDenied("internal.example"));
        Assert.True(guard.IsHostDenied("EXACT.example"));
        Assert.False(guard.IsHostDenied("notexact.example"));
    }

    [Fact]
    public async Task Concurrent_callers_share_one_run_and_a_failure_is_not_kept()
    {
        var flight = new SingleFlight<int>();
        var runs = 0;
        var gate = new TaskCompletionSource();
        async Task<int> Slow()
        {
            Interlocked.Increment(ref runs);
            await gate.Task;
            return 42;
        }
        var first = flight.RunAsync("k", Slow, CancellationToken.None);
        var second = flight.RunAsync("k", Slow, CancellationToken.None);
        using var impatient = new CancellationTokenSource();
        var third = flight.RunAsync("k", Slow, impatient.Token);
        impatient.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => third);
        gate.SetResult();
        var results = await Task.WhenAll(first, second);
        Assert.Equal(new[] { 42, 42 }, results);
        Assert.Equal(1, runs);

        await Assert.ThrowsAsync<InvalidOperationException>(() => flight.RunAsync("f", () => throw new InvalidOperationException(), CancellationToken.None));
        Assert.Equal(7, await flight.RunAsync("f", () => Task.FromResult(7), CancellationToken.None));
    }
}
