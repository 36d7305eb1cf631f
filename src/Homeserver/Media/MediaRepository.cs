using System.Collections.Concurrent;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Media;

/// <summary>An upload as the endpoint received it: the body stream and the metadata in headers and query.</summary>
public sealed record IncomingUpload(Stream Body, long? ContentLength, string ContentType, string? FileName);

/// <summary>
/// The content repository: uploads (direct, and into IDs made earlier by <c>/create</c>), quotas and pending limits, and
/// finding media to serve, local or remote (fetched over federation into the cache).
/// </summary>
public sealed class MediaRepository(
    Database db, MediaStore store, IMediaStorage storage, MediaStaging staging, RemoteMediaFetcher remote, HomeserverConfig config,
    TimeProvider clock)
{
    private const int DefaultWaitMs = 20_000;
    private const int MaxWaitMs = 60_000;

    private readonly MediaConfig _media = config.Media;
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _uploadWaiters = new();

    private long Now => clock.GetUtcNow().ToUnixTimeMilliseconds();
    private long FrozenFlag => _media.LegacyUnauthenticatedAccess ? 0 : 1;

    public async Task<string> UploadAsync(Requester requester, IncomingUpload upload, CancellationToken ct) =>
        (await StoreAsync(requester.UserId.Value, upload, ct)).ContentUri;

    /// <summary>Content the server fetched itself (URL preview images): owned by no user, so no quota applies.</summary>
    public Task<(string ContentUri, long Size)> StoreFetchedAsync(IncomingUpload content, CancellationToken ct) => StoreAsync(null, content, ct);

    private async Task<(string ContentUri, long Size)> StoreAsync(string? userId, IncomingUpload upload, CancellationToken ct)
    {
        var mediaId = MediaIds.NewMediaId();
        var (file, key) = await ReceiveAndStoreAsync(userId, upload, ct);
        try
        {
            await db.WriteAsync(s => store.InsertAsync(s, new MediaRow
            {
                ServerName = config.ServerName, MediaId = mediaId, UserId = userId, ContentType = upload.ContentType,
                UploadName = upload.FileName, SizeBytes = file.Size, StorageKey = key, CreatedTs = Now, Authenticated = FrozenFlag,
            }, file.Sha256), CancellationToken.None);
        }
        catch
        {
            await storage.DeleteAsync(key, CancellationToken.None);
            throw;
        }
        return ($"mxc://{config.ServerName}/{mediaId}", file.Size);
    }

    /// <summary><c>POST /media/v1/create</c>: an ID to upload into later, within the user's limit of pending IDs.</summary>
    public async Task<(string ContentUri, long ExpiresAt)> CreateAsync(Requester requester, CancellationToken ct)
    {
        var mediaId = MediaIds.NewMediaId();
        var now = Now;
        var expiresAt = now + _media.UnusedExpiresAfterMs;
        await db.WriteAsync(async s =>
        {
            var pending = await store.PendingExpiriesAsync(s, requester.UserId.Value, now);
            if (pending.Count >= _media.MaxPendingUploadsPerUser)
                throw MatrixException.LimitExceeded(pending[0] - now);
            await store.InsertAsync(s, new MediaRow
            {
                ServerName = config.ServerName, MediaId = mediaId, UserId = requester.UserId.Value, CreatedTs = now,
                UnusedExpiresTs = expiresAt, Authenticated = FrozenFlag,
            }, null);
        }, ct);
        return ($"mxc://{config.ServerName}/{mediaId}", expiresAt);
    }

    /// <summary><c>PUT /media/v3/upload/{serverName}/{mediaId}</c>: content for an ID this user created.</summary>
    public async Task UploadToPendingAsync(Requester requester, string serverName, string mediaId, IncomingUpload upload, CancellationToken ct)
    {
        await CheckPendingAsync(requester, serverName, mediaId, ct);
        var (file, key) = await ReceiveAndStoreAsync(requester.UserId.Value, upload, ct);
        bool completed;
        try
        {
            completed = await db.WriteAsync(
                s => store.CompletePendingAsync(s, serverName, mediaId, upload.ContentType, upload.FileName, file.Size, file.Sha256, key),
                CancellationToken.None);
        }
        catch
        {
            await storage.DeleteAsync(key, CancellationToken.None);
            throw;
        }
        if (!completed)
        {
            await storage.DeleteAsync(key, CancellationToken.None);
            throw CannotOverwrite();
        }
        if (_uploadWaiters.TryRemove(WaiterKey(serverName, mediaId), out var waiter))
            waiter.TrySetResult();
    }

    private async Task CheckPendingAsync(Requester requester, string serverName, string mediaId, CancellationToken ct)
    {
        var row = serverName == config.ServerName && MediaIds.IsValidMediaId(mediaId)
            ? await db.ReadAsync(s => store.GetAsync(s, serverName, mediaId), ct)
            : null;
        if (row is null || (row.IsPending && row.UnusedExpiresTs <= Now))
            throw MatrixException.NotFound("Unknown media ID.");
        if (row.UserId != requester.UserId.Value)
            throw MatrixException.Forbidden("This media ID was created by another user.");
        if (!row.IsPending)
            throw CannotOverwrite();
    }

    private static MatrixException CannotOverwrite() => new(409, "M_CANNOT_OVERWRITE_MEDIA", "Media already uploaded.");

    private async Task<(StagedFile File, string Key)> ReceiveAndStoreAsync(string? userId, IncomingUpload upload, CancellationToken ct)
    {
        if (upload.ContentLength > _media.MaxUploadBytes)
            throw UploadTooLarge();
        var limit = _media.MaxUploadBytes;
        if (_media.QuotaBytesPerUser is { } quota && userId is not null)
        {
            var used = await db.ReadAsync(s => store.BytesUploadedByAsync(s, userId), ct);
            if (used + (upload.ContentLength ?? 0) > quota)
                throw MatrixException.Forbidden("Your media quota is used up.");
            limit = Math.Min(limit, quota - used);
        }
        var file = await staging.ReceiveAsync(upload.Body, limit, () => limit < _media.MaxUploadBytes
            ? MatrixException.Forbidden("Your media quota is used up.")
            : UploadTooLarge(), ct);
        var key = MediaIds.NewStorageKey("local");
        try
        {
            await storage.PutAsync(key, file, upload.ContentType, ct);
        }
        catch
        {
            file.Dispose();
            throw;
        }
        return (file, key);
    }

    private MatrixException UploadTooLarge() => MatrixException.TooLarge($"Uploads are limited to {_media.MaxUploadBytes} bytes.");

    /// <summary>
    /// Media ready to serve: local content (waiting up to <paramref name="timeoutMs"/> for an ID still awaiting its upload), or
    /// remote content from the cache or fetched now. <paramref name="legacy"/> requests do not see media stored after the freeze.
    /// </summary>
    public async Task<MediaRow> FindAsync(string serverName, string mediaId, bool allowRemote, long? timeoutMs, bool legacy,
        CancellationToken ct)
    {
        if (!Matrix.Federation.Identifiers.ServerName.TryParse(serverName, out _) || !MediaIds.IsValidMediaId(mediaId))
            throw MatrixException.NotFound("Media not found.");
        var wait = TimeSpan.FromMilliseconds(Math.Clamp(timeoutMs ?? DefaultWaitMs, 0, MaxWaitMs));
        MediaRow row;
        if (serverName == config.ServerName)
            row = await LocalAsync(serverName, mediaId, wait, ct);
        else
        {
            var cached = await db.ReadAsync(s => store.GetAsync(s, serverName, mediaId), ct);
            if (cached is null && !allowRemote)
                throw MatrixException.NotFound("Remote media is not cached here and allow_remote is false.");
            row = cached ?? await remote.FetchAsync(serverName, mediaId, wait, ct);
        }
        if (row.QuarantinedBy is not null)
            throw MatrixException.NotFound("Media not found.");
        if (legacy && row.Authenticated != 0)
            throw MatrixException.NotFound("Media not found. This media is only served by the authenticated /_matrix/client/v1/media endpoints.");
        return row;
    }

    private async Task<MediaRow> LocalAsync(string serverName, string mediaId, TimeSpan wait, CancellationToken ct)
    {
        var deadline = clock.GetUtcNow() + wait;
        while (true)
        {
            var row = await db.ReadAsync(s => store.GetAsync(s, serverName, mediaId), ct);
            if (row is null || (row.IsPending && row.UnusedExpiresTs <= Now))
                throw MatrixException.NotFound("Media not found.");
            if (!row.IsPending)
                return row;
            var remaining = deadline - clock.GetUtcNow();
            if (remaining <= TimeSpan.Zero)
                throw new MatrixException(504, "M_NOT_YET_UPLOADED", "Content has not yet been uploaded.");
            var waiter = _uploadWaiters.GetOrAdd(WaiterKey(serverName, mediaId),
                _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            // Re-read at least every second: the upload may complete between the read and the wait, or in another process.
            var slice = remaining < TimeSpan.FromSeconds(1) ? remaining : TimeSpan.FromSeconds(1);
            await Task.WhenAny(waiter.Task, Task.Delay(slice, clock, ct));
            ct.ThrowIfCancellationRequested();
        }
    }

    private static string WaiterKey(string serverName, string mediaId) => serverName + "/" + mediaId;

    public async Task<int> ExpireUnusedAsync(CancellationToken ct)
    {
        var now = Now;
        var deleted = await db.WriteAsync(s => store.DeleteExpiredPendingAsync(s, now), ct);
        // Waiters on expired IDs wake, re-read and get 404; the map holds only IDs someone is waiting for.
        foreach (var key in _uploadWaiters.Keys)
            if (_uploadWaiters.TryRemove(key, out var waiter))
                waiter.TrySetResult();
        return deleted;
    }
}
