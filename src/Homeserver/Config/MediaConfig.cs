namespace Matrix.Homeserver.Config;

/// <summary>The <c>media:</c> section: the content repository's limits, storage backend, thumbnails and URL previews.</summary>
public sealed class MediaConfig
{
    /// <summary>"local" (files under <c>media_store_path</c>) or "s3".</summary>
    public string Storage { get; set; } = "local";
    public long MaxUploadBytes { get; set; } = 50L * 1024 * 1024;
    /// <summary>Total bytes one user may have uploaded; null for no quota.</summary>
    public long? QuotaBytesPerUser { get; set; }
    public int MaxPendingUploadsPerUser { get; set; } = 5;
    public long UnusedExpiresAfterMs { get; set; } = 24 * 60 * 60 * 1000;
    /// <summary>
    /// When false (the default, as Synapse's <c>enable_authenticated_media</c>), media uploaded or cached from now on is
    /// served only by the authenticated endpoints; media stored before the freeze keeps working on the legacy ones.
    /// </summary>
    public bool LegacyUnauthenticatedAccess { get; set; }
    /// <summary>Largest remote file fetched into the cache; larger ones are answered 502 M_TOO_LARGE.</summary>
    public long MaxRemoteBytes { get; set; } = 50L * 1024 * 1024;
    public ThumbnailConfig Thumbnails { get; set; } = new();
    public S3Config S3 { get; set; } = new();
    public UrlPreviewConfig UrlPreview { get; set; } = new();
}

public sealed class ThumbnailConfig
{
    public bool Enabled { get; set; } = true;
    /// <summary>Images with more pixels than this are not thumbnailed (413 M_TOO_LARGE): decoding bombs stay out.</summary>
    public long MaxSourcePixels { get; set; } = 32_000_000;
    /// <summary>Without libvips, originals up to this size are served in place of thumbnails.</summary>
    public long FallbackOriginalMaxBytes { get; set; } = 1024 * 1024;
    public List<ThumbnailSize> Sizes { get; set; } =
    [
        new() { Width = 32, Height = 32, Method = "crop" },
        new() { Width = 96, Height = 96, Method = "crop" },
        new() { Width = 320, Height = 240, Method = "scale" },
        new() { Width = 640, Height = 480, Method = "scale" },
        new() { Width = 800, Height = 600, Method = "scale" },
    ];
}

public sealed class ThumbnailSize
{
    public int Width { get; set; }
    public int Height { get; set; }
    public string Method { get; set; } = "scale";
}

public sealed class S3Config
{
    public string? Bucket { get; set; }
    /// <summary>The service URL for MinIO or another S3-compatible store; null for AWS itself.</summary>
    public string? Endpoint { get; set; }
    public string Region { get; set; } = "us-east-1";
    public string? AccessKeyId { get; set; }
    public string? SecretAccessKey { get; set; }
    public bool ForcePathStyle { get; set; }
    public string KeyPrefix { get; set; } = "";
}

public sealed class UrlPreviewConfig
{
    public bool Enabled { get; set; } = true;
    /// <summary>Host names previews are refused for; "*.example.com" matches subdomains.</summary>
    public List<string> HostDenylist { get; set; } = [];
    public long MaxPageBytes { get; set; } = 10L * 1024 * 1024;
    public long TimeoutMs { get; set; } = 10_000;
    public long CacheMs { get; set; } = 60 * 60 * 1000;
}
