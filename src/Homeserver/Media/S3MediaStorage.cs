using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.Media;

/// <summary>Media as objects in an S3 bucket (AWS, MinIO or any S3-compatible store), keyed by <c>key_prefix</c> + storage key.</summary>
public sealed class S3MediaStorage : IMediaStorage, IDisposable
{
    private readonly AmazonS3Client _client;
    private readonly S3Config _config;

    private readonly ILogger _logger;

    public S3MediaStorage(S3Config config, ILogger logger)
    {
        _config = config;
        _logger = logger;
        var clientConfig = new AmazonS3Config
        {
            ForcePathStyle = config.ForcePathStyle,
            AuthenticationRegion = config.Region,
            // Checksums only where S3 requires them: S3-compatible stores differ in which trailing-checksum forms they accept.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        };
        if (config.Endpoint is { } endpoint)
            clientConfig.ServiceURL = endpoint;
        else
            clientConfig.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(config.Region);
        _client = config.AccessKeyId is { } keyId
            ? new AmazonS3Client(new BasicAWSCredentials(keyId, config.SecretAccessKey), clientConfig)
            : new AmazonS3Client(clientConfig);
    }

    public async Task PutAsync(string key, StagedFile file, string contentType, CancellationToken ct)
    {
        await CallAsync(() => _client.PutObjectAsync(new PutObjectRequest
        {
            BucketName = _config.Bucket,
            Key = _config.KeyPrefix + key,
            FilePath = file.Path,
            ContentType = contentType,
            UseChunkEncoding = false,
        }, ct), ct);
        file.Dispose();
    }

    public async Task<Stream> OpenReadAsync(string key, CancellationToken ct)
    {
        try
        {
            return (await CallAsync(() => _client.GetObjectAsync(_config.Bucket, _config.KeyPrefix + key, ct), ct)).ResponseStream;
        }
        catch (AmazonS3Exception e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            throw new FileNotFoundException($"media object {key} is missing from the bucket", e);
        }
    }

    public string? LocalPath(string key) => null;

    public Task DeleteAsync(string key, CancellationToken ct) =>
        CallAsync(() => _client.DeleteObjectAsync(_config.Bucket, _config.KeyPrefix + key, ct), ct);

    /// <summary>A store that cannot be reached is the server's trouble, not the client's: 503, with the cause in the log.</summary>
    private async Task<T> CallAsync<T>(Func<Task<T>> call, CancellationToken ct)
    {
        try
        {
            return await call();
        }
        catch (Exception e) when (e is HttpRequestException or AmazonServiceException { StatusCode: >= System.Net.HttpStatusCode.InternalServerError or 0 }
                                      or TaskCanceledException && !ct.IsCancellationRequested)
        {
            _logger.LogError("S3 media store {Endpoint} failed: {Reason}", _config.Endpoint ?? "AWS", e.Message);
            throw new Http.MatrixException(503, "M_UNKNOWN", "The media store is unavailable; try again later.");
        }
    }

    public void Dispose() => _client.Dispose();
}
