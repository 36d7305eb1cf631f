using System.Security.Cryptography;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Media;

/// <summary>A file received into the staging folder: its size and SHA-256 are known, and it is deleted on dispose unless moved away.</summary>
public sealed class StagedFile(string path, long size, string sha256) : IDisposable
{
    public string Path { get; } = path;
    public long Size { get; } = size;
    public string Sha256 { get; } = sha256;

    public void Dispose()
    {
        try { File.Delete(Path); } catch (IOException) { }
    }
}

/// <summary>
/// Receives content into files under <c>&lt;media_store_path&gt;/staging</c>, streaming with a size limit, so no upload or
/// remote download is ever held in memory and nothing half-received reaches the store.
/// </summary>
public sealed class MediaStaging
{
    private const int BufferSize = 128 * 1024;
    private readonly string _folder;

    public MediaStaging(HomeserverConfig config)
    {
        _folder = System.IO.Path.Combine(config.EffectiveMediaStorePath, "staging");
        Directory.CreateDirectory(_folder);
        // Left over from a crash: nothing refers to them.
        foreach (var stale in Directory.EnumerateFiles(_folder))
            try { File.Delete(stale); } catch (IOException) { }
    }

    public string NewPath(string extension = "") => System.IO.Path.Combine(_folder, MediaIds.NewMediaId() + extension);

    /// <param name="tooLarge">what to throw when the content exceeds <paramref name="limit"/></param>
    public async Task<StagedFile> ReceiveAsync(Stream source, long limit, Func<MatrixException> tooLarge, CancellationToken ct)
    {
        var path = NewPath();
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long size = 0;
            await using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferSize, FileOptions.Asynchronous))
            {
                var buffer = new byte[BufferSize];
                int read;
                while ((read = await source.ReadAsync(buffer, ct)) > 0)
                {
                    size += read;
                    if (size > limit)
                        throw tooLarge();
                    hash.AppendData(buffer, 0, read);
                    await file.WriteAsync(buffer.AsMemory(0, read), ct);
                }
                // Acknowledged uploads must survive a crash: the bytes reach the disk before anyone is told.
                file.Flush(flushToDisk: true);
            }
            return new StagedFile(path, size, Convert.ToHexStringLower(hash.GetHashAndReset()));
        }
        catch
        {
            try { File.Delete(path); } catch (IOException) { }
            throw;
        }
    }
}
