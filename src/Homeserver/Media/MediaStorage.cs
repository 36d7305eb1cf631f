namespace Matrix.Homeserver.Media;

/// <summary>Where media bytes live (the database holds only metadata): the local filesystem or an S3 bucket.</summary>
public interface IMediaStorage
{
    /// <summary>Moves a staged file into the store under <paramref name="key"/>.</summary>
    Task PutAsync(string key, StagedFile file, string contentType, CancellationToken ct);

    Task<Stream> OpenReadAsync(string key, CancellationToken ct);

    /// <summary>The object's file when the store is the local filesystem (served without copying), else null.</summary>
    string? LocalPath(string key);

    Task DeleteAsync(string key, CancellationToken ct);
}

/// <summary>Media as files under <c>media_store_path</c>.</summary>
public sealed class LocalMediaStorage(string root) : IMediaStorage
{
    public Task PutAsync(string key, StagedFile file, string contentType, CancellationToken ct)
    {
        var path = LocalPath(key);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.Move(file.Path, path);
        return Task.CompletedTask;
    }

    public Task<Stream> OpenReadAsync(string key, CancellationToken ct) =>
        Task.FromResult<Stream>(new FileStream(LocalPath(key), FileMode.Open, FileAccess.Read, FileShare.Read, 128 * 1024, FileOptions.Asynchronous));

    public string LocalPath(string key) => Path.Combine(root, key);

    public Task DeleteAsync(string key, CancellationToken ct)
    {
        try { File.Delete(LocalPath(key)); } catch (IOException) { }
        return Task.CompletedTask;
    }
}
