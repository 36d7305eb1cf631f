using System.Net;
using System.Security.Cryptography;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Media storage backends and limits that need a server of their own: S3, the legacy access switch, a 1 GiB file.</summary>
public sealed class MediaStorageTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public async Task Media_in_an_s3_bucket_is_uploaded_served_and_thumbnailed()
    {
        await using var s3 = await TestS3Server.StartAsync();
        await using var server = new HomeserverProcess(new SqliteTestDatabase().Yaml, s3.MediaYaml);
        await server.StartAsync();
        var client = new MatrixClient(server.BaseUrl, server.ServerName);
        var media = new MediaClient(server.BaseUrl);
        var user = await client.RegisterAsync();

        var png = TestImages.Png(500, 400);
        var upload = await media.UploadAsync(png, "image/png", user.AccessToken, "bucket.png");
        Assert.True(upload.Status == 200, upload.ToString());
        var path = MediaClient.PathOf(upload.Str("content_uri"));
        using (var download = await media.GetAsync($"/_matrix/client/v1/media/download/{path}", user.AccessToken))
        {
            Assert.Equal(png, await download.Content.ReadAsByteArrayAsync());
            Assert.Equal("inline; filename=\"bucket.png\"", download.Content.Headers.GetValues("Content-Disposition").Single());
        }
        using (var thumbnail = await media.GetAsync($"/_matrix/client/v1/media/thumbnail/{path}?width=32&height=32&method=crop", user.AccessToken))
            Assert.Equal((32, 32), TestImages.PngSize(await thumbnail.Content.ReadAsByteArrayAsync()));

        var created = await client.PostAsync("/_matrix/media/v1/create", null, user.AccessToken);
        var createdPath = MediaClient.PathOf(created.Str("content_uri"));
        Assert.Equal(200, (await media.UploadAsync(MediaClient.Content("later"u8.ToArray(), "text/plain"), user.AccessToken,
            path: $"/_matrix/media/v3/upload/{createdPath}", method: HttpMethod.Put)).Status);
        using (var later = await media.GetAsync($"/_matrix/client/v1/media/download/{createdPath}", user.AccessToken))
            Assert.Equal("later", await later.Content.ReadAsStringAsync());

        // Original, thumbnail and the later upload are objects under the configured prefix; nothing is kept on local disk.
        var objects = s3.ObjectFiles();
        Assert.Equal(3, objects.Count);
        Assert.All(objects, o => Assert.Contains($"{TestS3Server.Bucket}{Path.DirectorySeparatorChar}hs{Path.DirectorySeparatorChar}", o));
        Assert.Contains(objects, o => File.ReadAllBytes(o).SequenceEqual(png));
        var localFiles = Directory.EnumerateFiles(Path.Combine(server.DataDir, "media"), "*", SearchOption.AllDirectories).ToList();
        Assert.Empty(localFiles);

        // The store going away is answered with a clear error, and nothing is recorded for the failed upload.
        await s3.DisposeAsync();
        var refused = await media.UploadAsync("lost?"u8.ToArray(), "text/plain", user.AccessToken);
        Assert.Equal(503, refused.Status);
        Assert.Equal("M_UNKNOWN", refused.Errcode);
        using var unavailable = await media.GetAsync($"/_matrix/client/v1/media/download/{path}", user.AccessToken);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, unavailable.StatusCode);
    }

    [Fact]
    public async Task With_legacy_access_kept_the_unauthenticated_endpoints_serve_new_media_and_unused_ids_expire()
    {
        await using var server = new HomeserverProcess(new SqliteTestDatabase().Yaml,
            "media:\n  legacy_unauthenticated_access: true\n  unused_expires_after_ms: 1000\n  max_pending_uploads_per_user: 1\n");
        await server.StartAsync();
        var client = new MatrixClient(server.BaseUrl, server.ServerName);
        var user = await client.RegisterAsync();
        var media = new MediaClient(server.BaseUrl);
        var path = MediaClient.PathOf((await media.UploadAsync(TestImages.Png(64, 64), "image/png", user.AccessToken)).Str("content_uri"));
        using (var download = await media.GetAsync($"/_matrix/media/v3/download/{path}", null))
        {
            Assert.Equal(HttpStatusCode.OK, download.StatusCode);
            Assert.Equal("public, max-age=86400", download.Headers.CacheControl!.ToString());
        }
        using (var thumbnail = await media.GetAsync($"/_matrix/media/r0/thumbnail/{path}?width=32&height=32&method=crop", null))
            Assert.Equal((32, 32), TestImages.PngSize(await thumbnail.Content.ReadAsByteArrayAsync()));

        var created = MediaClient.PathOf((await client.PostAsync("/_matrix/media/v1/create", null, user.AccessToken)).Str("content_uri"));
        Assert.Equal(429, (await client.PostAsync("/_matrix/media/v1/create", null, user.AccessToken)).Status);
        await Task.Delay(1500);
        // Expired: the ID takes no content, and no longer counts against the user's pending limit.
        var late = await media.UploadAsync(MediaClient.Content("late"u8.ToArray(), "text/plain"), user.AccessToken,
            path: $"/_matrix/media/v3/upload/{created}", method: HttpMethod.Put);
        Assert.Equal(404, late.Status);
        Assert.Equal(200, (await client.PostAsync("/_matrix/media/v1/create", null, user.AccessToken)).Status);
    }

    /// <summary>Thumbnails switched off behave as a server without libvips: small images whole, large ones refused.</summary>
    [Fact]
    public async Task Without_thumbnailing_small_images_are_sent_whole()
    {
        await using var server = new HomeserverProcess(new SqliteTestDatabase().Yaml,
            "media:\n  thumbnails:\n    enabled: false\n    fallback_original_max_bytes: 20000\n");
        await server.StartAsync();
        var user = await new MatrixClient(server.BaseUrl, server.ServerName).RegisterAsync();
        var media = new MediaClient(server.BaseUrl);
        var small = TestImages.Png(40, 40);
        var large = TestImages.Png(400, 400);
        Assert.True(small.Length < 20000 && large.Length > 20000);
        var smallPath = MediaClient.PathOf((await media.UploadAsync(small, "image/png", user.AccessToken)).Str("content_uri"));
        var largePath = MediaClient.PathOf((await media.UploadAsync(large, "image/png", user.AccessToken)).Str("content_uri"));
        using (var whole = await media.GetAsync($"/_matrix/client/v1/media/thumbnail/{smallPath}?width=32&height=32&method=crop", user.AccessToken))
            Assert.Equal(small, await whole.Content.ReadAsByteArrayAsync());
        using var refused = await media.GetAsync($"/_matrix/client/v1/media/thumbnail/{largePath}?width=32&height=32&method=crop", user.AccessToken);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
    }

    [Fact]
    public async Task A_one_gibibyte_file_streams_through_without_growing_the_server()
    {
        const long size = 1L << 30;
        await using var server = new HomeserverProcess(new SqliteTestDatabase().Yaml, $"media:\n  max_upload_bytes: {2L << 30}\n");
        await server.StartAsync();
        var user = await new MatrixClient(server.BaseUrl, server.ServerName).RegisterAsync();
        var media = new MediaClient(server.BaseUrl);
        // Warm up the upload and download paths, so the baseline includes what any first request loads.
        var warm = await media.UploadAsync(new byte[4096], "application/octet-stream", user.AccessToken);
        using (await media.GetAsync($"/_matrix/client/v1/media/download/{MediaClient.PathOf(warm.Str("content_uri"))}", user.AccessToken)) { }
        var baseline = server.ResidentBytes();
        long peak = baseline;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                peak = Math.Max(peak, server.ResidentBytes());
                await Task.Delay(50);
            }
        });

        var sent = new PatternStream(size);
        var upload = await media.UploadAsync(new StreamContent(sent, 256 * 1024)
            { Headers = { ContentType = new("application/octet-stream"), ContentLength = size } }, user.AccessToken, "big.bin");
        Assert.True(upload.Status == 200, upload.ToString());

        var download = await new HttpClient { Timeout = TimeSpan.FromMinutes(10) }.SendAsync(
            new HttpRequestMessage(HttpMethod.Get, $"{server.BaseUrl}/_matrix/client/v1/media/download/{MediaClient.PathOf(upload.Str("content_uri"))}")
            { Headers = { Authorization = new("Bearer", user.AccessToken) } }, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(size, download.Content.Headers.ContentLength);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        await using (var body = await download.Content.ReadAsStreamAsync())
        {
            var buffer = new byte[256 * 1024];
            int read;
            while ((read = await body.ReadAsync(buffer)) > 0)
                hash.AppendData(buffer, 0, read);
        }
        sampling.Cancel();
        await sampler;
        Assert.Equal(sent.Sha256(), hash.GetHashAndReset());
        var growth = peak - baseline;
        output.WriteLine($"1 GiB up and down: server RSS baseline {baseline >> 20} MB, peak {peak >> 20} MB");
        Assert.True(growth < 100L * 1024 * 1024, $"server memory grew by {growth / (1024 * 1024)} MB moving 1 GiB (baseline {baseline / (1024 * 1024)} MB)");
    }

    /// <summary>A long pseudo-random byte stream made on the fly (never held in memory), hashing itself as it is read.</summary>
    private sealed class PatternStream(long length) : Stream
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private long _position;
        private ulong _state = 0x9E3779B97F4A7C15;

        public byte[] Sha256() => _hash.GetHashAndReset();

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = (int)Math.Min(count, length - _position);
            for (var i = 0; i < n; i++)
            {
                _state ^= _state << 13;
                _state ^= _state >> 7;
                _state ^= _state << 17;
                buffer[offset + i] = (byte)_state;
            }
            _hash.AppendData(buffer, offset, n);
            _position += n;
            return n;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
