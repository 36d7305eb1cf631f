using System.Net;
using System.Text;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>A server with small media limits, user-chosen URLs allowed to reach 127.0.0.2 only, and plain-HTTP federation.</summary>
public class MediaServer(string engine) : ServerFixture(engine, """
    media:
      max_upload_bytes: 1048576
      quota_bytes_per_user: 3145728
      max_pending_uploads_per_user: 3

    outbound_http:
      ip_range_allowlist: ["127.0.0.2/32"]

    federation:
      plain_http: true
    """);

public sealed class SqliteMediaServer() : MediaServer("sqlite");
public sealed class PostgresMediaServer() : MediaServer("postgres");

/// <summary>Spec: client-server API, "Content repository" (authenticated and legacy endpoints), against a local store.</summary>
public abstract class MediaTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private MediaClient M => new(fixture.Server.BaseUrl);

    private async Task<string> UploadAsync(LoggedInUser user, byte[] bytes, string? contentType = "image/png", string? fileName = null)
    {
        var response = await M.UploadAsync(bytes, contentType, user.AccessToken, fileName);
        Assert.True(response.Status == 200, response.ToString());
        var uri = response.Str("content_uri");
        Assert.StartsWith($"mxc://{C.ServerName}/", uri);
        return uri;
    }

    [Fact]
    public async Task Upload_then_download_returns_the_bytes_with_safe_headers()
    {
        var user = await C.RegisterAsync();
        var png = TestImages.Png(40, 30);
        var mxc = await UploadAsync(user, png, "image/png", "holiday photo.png");
        Assert.Matches("^[A-Za-z0-9_-]{24,}$", mxc.Split('/')[^1]);

        using var download = await M.GetAsync($"/_matrix/client/v1/media/download/{MediaClient.PathOf(mxc)}", user.AccessToken);
        Assert.Equal(HttpStatusCode.OK, download.StatusCode);
        Assert.Equal(png, await download.Content.ReadAsByteArrayAsync());
        Assert.Equal("image/png", download.Content.Headers.ContentType!.MediaType);
        Assert.Equal("inline; filename=\"holiday photo.png\"", download.Content.Headers.GetValues("Content-Disposition").Single());
        Assert.StartsWith("sandbox;", download.Headers.GetValues("Content-Security-Policy").Single());
        Assert.Equal("nosniff", download.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("cross-origin", download.Headers.GetValues("Cross-Origin-Resource-Policy").Single());

        using var renamed = await M.GetAsync($"/_matrix/client/v1/media/download/{MediaClient.PathOf(mxc)}/other.png", user.AccessToken);
        Assert.Equal("inline; filename=\"other.png\"", renamed.Content.Headers.GetValues("Content-Disposition").Single());
    }

    [Fact]
    public async Task Active_content_is_an_attachment_and_a_missing_type_is_octet_stream()
    {
        var user = await C.RegisterAsync();
        var html = await UploadAsync(user, "<script>alert(1)</script>"u8.ToArray(), "text/html", "page.html");
        using (var response = await M.GetAsync($"/_matrix/client/v1/media/download/{MediaClient.PathOf(html)}", user.AccessToken))
        {
            Assert.StartsWith("attachment", response.Content.Headers.GetValues("Content-Disposition").Single());
            Assert.Equal("text/html", response.Content.Headers.ContentType!.MediaType);
        }

        var untyped = await UploadAsync(user, [1, 2, 3], contentType: null);
        using (var response = await M.GetAsync($"/_matrix/client/v1/media/download/{MediaClient.PathOf(untyped)}", user.AccessToken))
        {
            Assert.Equal("application/octet-stream", response.Content.Headers.ContentType!.MediaType);
            Assert.Equal("attachment", response.Content.Headers.GetValues("Content-Disposition").Single());
        }

        var unicode = await UploadAsync(user, "hi"u8.ToArray(), "text/plain", "naïve \"quote\".txt");
        using (var response = await M.GetAsync($"/_matrix/client/v1/media/download/{MediaClient.PathOf(unicode)}", user.AccessToken))
        {
            Assert.Equal("inline; filename*=utf-8''na%C3%AFve%20%22quote%22.txt", response.Content.Headers.GetValues("Content-Disposition").Single());
            Assert.Equal("text/plain; charset=utf-8", response.Content.Headers.ContentType!.ToString());
        }
    }

    [Fact]
    public async Task Authenticated_endpoints_need_a_token_and_new_media_is_frozen_on_legacy_ones()
    {
        var user = await C.RegisterAsync();
        var mxc = await UploadAsync(user, TestImages.Png(10, 10));
        var path = MediaClient.PathOf(mxc);
        Assert.Equal(401, (await M.UploadAsync([1], "image/png", token: null)).Status);
        using (var anonymous = await M.GetAsync($"/_matrix/client/v1/media/download/{path}", token: null))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            Assert.Equal("M_MISSING_TOKEN", await MediaClient.ErrcodeAsync(anonymous));
        }
        foreach (var legacy in new[] { $"/_matrix/media/v3/download/{path}", $"/_matrix/media/r0/download/{path}",
                     $"/_matrix/media/v3/thumbnail/{path}?width=32&height=32" })
        {
            using var response = await M.GetAsync(legacy, token: null);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal("M_NOT_FOUND", await MediaClient.ErrcodeAsync(response));
        }
        Assert.Equal(401, (await C.GetAsync("/_matrix/client/v1/media/config")).Status);
        var config = await C.GetAsync("/_matrix/client/v1/media/config", user.AccessToken);
        Assert.Equal(1048576, config.Body!["m.upload.size"]!.GetValue<long>());
        Assert.Equal(1048576, (await C.GetAsync("/_matrix/media/v3/config", user.AccessToken)).Body!["m.upload.size"]!.GetValue<long>());
    }

    [Fact]
    public async Task Bad_requests_get_the_spec_errors()
    {
        var user = await C.RegisterAsync();
        var tooLarge = await M.UploadAsync(new byte[1048577], "application/octet-stream", user.AccessToken);
        Assert.Equal(413, tooLarge.Status);
        Assert.Equal("M_TOO_LARGE", tooLarge.Errcode);

        foreach (var path in new[] { $"{C.ServerName}/doesNotExist0123456789", $"{C.ServerName}/bad.id", "not a server/abc" })
        {
            using var response = await M.GetAsync($"/_matrix/client/v1/media/download/{Uri.EscapeDataString(path.Split('/')[0])}/{Uri.EscapeDataString(path.Split('/')[1])}", user.AccessToken);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal("M_NOT_FOUND", await MediaClient.ErrcodeAsync(response));
        }

        var mxc = await UploadAsync(user, TestImages.Png(50, 50));
        var thumbnail = $"/_matrix/client/v1/media/thumbnail/{MediaClient.PathOf(mxc)}";
        Assert.Equal("M_MISSING_PARAM", (await C.GetAsync($"{thumbnail}?width=32", user.AccessToken)).Errcode);
        Assert.Equal("M_INVALID_PARAM", (await C.GetAsync($"{thumbnail}?width=-1&height=32", user.AccessToken)).Errcode);
        Assert.Equal("M_INVALID_PARAM", (await C.GetAsync($"{thumbnail}?width=32&height=32&method=stretch", user.AccessToken)).Errcode);
        var text = await UploadAsync(user, "not an image"u8.ToArray(), "text/plain");
        var notImage = await C.GetAsync($"/_matrix/client/v1/media/thumbnail/{MediaClient.PathOf(text)}?width=32&height=32", user.AccessToken);
        Assert.Equal(400, notImage.Status);
        var fakeImage = await UploadAsync(user, "not a png at all"u8.ToArray(), "image/png");
        Assert.Equal(400, (await C.GetAsync($"/_matrix/client/v1/media/thumbnail/{MediaClient.PathOf(fakeImage)}?width=1&height=1", user.AccessToken)).Status);
    }

    [Fact]
    public async Task Create_then_upload_into_the_id()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var created = await C.PostAsync("/_matrix/media/v1/create", null, alice.AccessToken);
        Assert.Equal(200, created.Status);
        var mxc = created.Str("content_uri");
        Assert.True(created.Body!["unused_expires_at"]!.GetValue<long>() > DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        var path = MediaClient.PathOf(mxc);

        var notYet = await C.GetAsync($"/_matrix/client/v1/media/download/{path}?timeout_ms=200", alice.AccessToken);
        Assert.Equal(504, notYet.Status);
        Assert.Equal("M_NOT_YET_UPLOADED", notYet.Errcode);

        // A download already waiting gets the content as soon as it arrives.
        var waiting = M.GetAsync($"/_matrix/client/v1/media/download/{path}?timeout_ms=15000", bob.AccessToken);
        await Task.Delay(300);
        var put = $"/_matrix/media/v3/upload/{path}";
        var intruder = await M.UploadAsync(MediaClient.Content("x"u8.ToArray(), "text/plain"), bob.AccessToken, path: put, method: HttpMethod.Put);
        Assert.Equal(403, intruder.Status);
        Assert.Equal("M_FORBIDDEN", intruder.Errcode);
        var upload = await M.UploadAsync(MediaClient.Content("late content"u8.ToArray(), "text/plain"), alice.AccessToken, "late.txt", put, HttpMethod.Put);
        Assert.Equal(200, upload.Status);
        using (var arrived = await waiting)
        {
            Assert.Equal(HttpStatusCode.OK, arrived.StatusCode);
            Assert.Equal("late content", await arrived.Content.ReadAsStringAsync());
            Assert.Equal("inline; filename=\"late.txt\"", arrived.Content.Headers.GetValues("Content-Disposition").Single());
        }
        var again = await M.UploadAsync(MediaClient.Content("other"u8.ToArray(), "text/plain"), alice.AccessToken, path: put, method: HttpMethod.Put);
        Assert.Equal(409, again.Status);
        Assert.Equal("M_CANNOT_OVERWRITE_MEDIA", again.Errcode);
        var unknown = await M.UploadAsync(MediaClient.Content("x"u8.ToArray(), "text/plain"), alice.AccessToken,
            path: $"/_matrix/media/v3/upload/{C.ServerName}/neverCreated123", method: HttpMethod.Put);
        Assert.Equal(404, unknown.Status);
        Assert.Equal("M_NOT_FOUND", unknown.Errcode);
    }

    [Fact]
    public async Task Pending_ids_and_total_bytes_are_limited_per_user()
    {
        var user = await C.RegisterAsync();
        for (var i = 0; i < 3; i++)
            Assert.Equal(200, (await C.PostAsync("/_matrix/media/v1/create", null, user.AccessToken)).Status);
        var limited = await C.PostAsync("/_matrix/media/v1/create", null, user.AccessToken);
        Assert.Equal(429, limited.Status);
        Assert.Equal("M_LIMIT_EXCEEDED", limited.Errcode);
        Assert.True(limited.Body!["retry_after_ms"]!.GetValue<long>() > 0);

        for (var i = 0; i < 3; i++)
            await UploadAsync(user, new byte[1048576], "application/octet-stream");
        var overQuota = await M.UploadAsync([1], "application/octet-stream", user.AccessToken);
        Assert.Equal(403, overQuota.Status);
        Assert.Equal("M_FORBIDDEN", overQuota.Errcode);
        // The quota is per user: another user still uploads.
        await UploadAsync(await C.RegisterAsync(), [1]);
    }

    [Fact]
    public async Task Thumbnails_are_never_upscaled_nor_smaller_than_asked()
    {
        var user = await C.RegisterAsync();
        var png = TestImages.Png(400, 300);
        var path = MediaClient.PathOf(await UploadAsync(user, png));
        async Task<(int, int, string)> ThumbnailAsync(string query)
        {
            using var response = await M.GetAsync($"/_matrix/client/v1/media/thumbnail/{path}?{query}", user.AccessToken);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.StartsWith("inline", response.Content.Headers.GetValues("Content-Disposition").Single());
            var bytes = await response.Content.ReadAsByteArrayAsync();
            var (w, h) = TestImages.PngSize(bytes);
            return (w, h, response.Content.Headers.ContentType!.MediaType!);
        }
        Assert.Equal((96, 96, "image/png"), await ThumbnailAsync("width=64&height=64&method=crop"));
        Assert.Equal((32, 32, "image/png"), await ThumbnailAsync("width=32&height=32&method=crop"));
        Assert.Equal((320, 240, "image/png"), await ThumbnailAsync("width=200&height=100&method=scale"));
        Assert.Equal((320, 240, "image/png"), await ThumbnailAsync("width=200&height=100"));
        // Larger than any thumbnail of it would be: the original.
        Assert.Equal((400, 300, "image/png"), await ThumbnailAsync("width=640&height=480&method=scale"));
        Assert.Equal((400, 300, "image/png"), await ThumbnailAsync("width=1000&height=1000&method=crop"));
        // Stored on first request, served from the store after.
        Assert.Equal((96, 96, "image/png"), await ThumbnailAsync("width=96&height=96&method=crop"));

        var small = MediaClient.PathOf(await UploadAsync(user, TestImages.Png(20, 20)));
        using var tiny = await M.GetAsync($"/_matrix/client/v1/media/thumbnail/{small}?width=96&height=96&method=crop", user.AccessToken);
        Assert.Equal((20, 20), TestImages.PngSize(await tiny.Content.ReadAsByteArrayAsync()));
    }

    [Fact]
    public async Task Url_previews_read_opengraph_store_the_image_and_refuse_loopback()
    {
        var user = await C.RegisterAsync();
        var image = TestImages.Png(60, 40);
        var pageHits = 0;
        await using var site = new LoopbackListener(async context =>
        {
            if (context.Request.Url!.AbsolutePath == "/logo.png")
            {
                context.Response.ContentType = "image/png";
                await context.Response.OutputStream.WriteAsync(image);
            }
            else
            {
                Interlocked.Increment(ref pageHits);
                context.Response.ContentType = "text/html; charset=utf-8";
                await context.Response.OutputStream.WriteAsync(Encoding.UTF8.GetBytes("""
                    <html><head><title>Fallback title</title>
                    <meta property="og:title" content="Quarterly &amp; results">
                    <meta name="description" content="Numbers, explained">
                    <meta property="og:image" content="/logo.png">
                    </head><body>…</body></html>
                    """));
            }
            context.Response.Close();
        }, address: "127.0.0.2");

        var url = Uri.EscapeDataString($"{site.BaseUrl}/report?q=1#section");
        var preview = await C.GetAsync($"/_matrix/client/v1/media/preview_url?url={url}", user.AccessToken);
        Assert.True(preview.Status == 200, preview.ToString());
        Assert.Equal("Quarterly & results", preview.Str("og:title"));
        Assert.Equal("Numbers, explained", preview.Str("og:description"));
        Assert.Equal(image.Length, preview.Body!["matrix:image:size"]!.GetValue<long>());
        Assert.Equal("image/png", preview.Str("og:image:type"));
        Assert.Equal((60, 40), (preview.Body!["og:image:width"]!.GetValue<int>(), preview.Body!["og:image:height"]!.GetValue<int>()));
        using (var stored = await M.GetAsync($"/_matrix/client/v1/media/download/{MediaClient.PathOf(preview.Str("og:image"))}", user.AccessToken))
            Assert.Equal(image, await stored.Content.ReadAsByteArrayAsync());

        var legacy = await C.GetAsync($"/_matrix/media/v3/preview_url?url={url}", user.AccessToken);
        Assert.Equal("Quarterly & results", legacy.Str("og:title"));
        Assert.Equal(1, pageHits);

        foreach (var target in new[] { fixture.Server.BaseUrl + "/_matrix/client/versions", $"http://localhost:{site.Port}/", "http://[::1]/", "http://10.0.0.1/" })
        {
            var refused = await C.GetAsync($"/_matrix/client/v1/media/preview_url?url={Uri.EscapeDataString(target)}", user.AccessToken);
            Assert.True(refused.Status == 403 && refused.Errcode == "M_FORBIDDEN", $"{target}: {refused}");
        }
        Assert.Equal(400, (await C.GetAsync("/_matrix/client/v1/media/preview_url?url=ftp%3A%2F%2Fexample.com%2F", user.AccessToken)).Status);
        Assert.Equal("M_MISSING_PARAM", (await C.GetAsync("/_matrix/client/v1/media/preview_url", user.AccessToken)).Errcode);
        Assert.Equal(401, (await C.GetAsync($"/_matrix/client/v1/media/preview_url?url={url}")).Status);
    }

    [Fact]
    public async Task Remote_media_from_a_server_without_federation_media_comes_through_the_legacy_endpoint()
    {
        var user = await C.RegisterAsync();
        var paths = new List<string>();
        await using var oldServer = new LoopbackListener(async context =>
        {
            lock (paths)
                paths.Add(context.Request.Url!.PathAndQuery);
            if (context.Request.Url!.AbsolutePath.StartsWith("/_matrix/media/v3/download/", StringComparison.Ordinal))
            {
                context.Response.ContentType = "text/plain";
                context.Response.AddHeader("Content-Disposition", "inline; filename=\"old.txt\"");
                await context.Response.OutputStream.WriteAsync("from an old server"u8.ToArray());
                context.Response.Close();
            }
            else
                await LoopbackListener.RespondAsync(context, 404, new System.Text.Json.Nodes.JsonObject { ["errcode"] = "M_UNRECOGNIZED", ["error"] = "Unrecognized request" });
        });
        var server = $"127.0.0.1:{oldServer.Port}";
        using var response = await M.GetAsync($"/_matrix/client/v1/media/download/{server}/oldMedia1", user.AccessToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("from an old server", await response.Content.ReadAsStringAsync());
        Assert.Equal("inline; filename=\"old.txt\"", response.Content.Headers.GetValues("Content-Disposition").Single());
        Assert.Contains(paths, p => p.StartsWith("/_matrix/federation/v1/media/download/oldMedia1", StringComparison.Ordinal));
        Assert.Contains(paths, p => p.StartsWith($"/_matrix/media/v3/download/{server}/oldMedia1?allow_remote=false", StringComparison.Ordinal));

        // Cached: the remote server is not asked again.
        var asked = paths.Count;
        using var again = await M.GetAsync($"/_matrix/client/v1/media/download/{server}/oldMedia1", user.AccessToken);
        Assert.Equal("from an old server", await again.Content.ReadAsStringAsync());
        Assert.Equal(asked, paths.Count);

        // Legacy callers that forbid remote fetches get 404 for what is not cached.
        using var notCached = await M.GetAsync($"/_matrix/media/v3/download/{server}/otherMedia?allow_remote=false", null);
        Assert.Equal(HttpStatusCode.NotFound, notCached.StatusCode);
    }

    [Fact]
    public async Task A_remote_media_redirect_to_a_private_address_is_not_followed()
    {
        var user = await C.RegisterAsync();
        var internalHits = 0;
        await using var internalService = new LoopbackListener(async context =>
        {
            Interlocked.Increment(ref internalHits);
            await LoopbackListener.RespondAsync(context, 200, new System.Text.Json.Nodes.JsonObject { ["secret"] = "internal" });
        });
        await using var hostile = new LoopbackListener(async context =>
        {
            const string boundary = "b0undary";
            context.Response.ContentType = $"multipart/mixed; boundary={boundary}";
            await context.Response.OutputStream.WriteAsync(Encoding.UTF8.GetBytes(
                $"--{boundary}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n--{boundary}\r\nLocation: {internalService.BaseUrl}/secret\r\n\r\n\r\n--{boundary}--\r\n"));
            context.Response.Close();
        });
        var response = await C.GetAsync($"/_matrix/client/v1/media/download/127.0.0.1:{hostile.Port}/redirected", user.AccessToken);
        Assert.Equal(502, response.Status);
        Assert.Contains("redirect was refused", response.Str("error"));
        Assert.Equal(0, internalHits);
    }
}

public sealed class MediaTestsSqlite(SqliteMediaServer f) : MediaTests(f), IClassFixture<SqliteMediaServer>;
public sealed class MediaTestsPostgres(PostgresMediaServer f) : MediaTests(f), IClassFixture<PostgresMediaServer>;
