using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SleapRtc.Protocol.Signaling;

/// <summary>
/// The keys of the classic peer metadata (<c>{"tags": [...], "properties": {...}}</c> in register and
/// update_metadata), spelled once for the worker that writes them, the client that discovers workers by them and
/// the server's monitor that shows them. Python sleap-RTC peers use the same spellings.
/// </summary>
public static class PeerMetadataKeys
{
    public const string Tags = "tags";
    public const string Properties = "properties";

    public const string Status = "status";
    public const string GpuModel = "gpu_model";
    public const string GpuMemoryMB = "gpu_memory_mb";
    public const string GpuId = "gpu_id";
    public const string CudaVersion = "cuda_version";
    public const string Hostname = "hostname";
    public const string SleapVersion = "sleap_version";
    public const string WorkerName = "worker_name";
    public const string MaxConcurrentJobs = "max_concurrent_jobs";
    public const string SupportedModels = "supported_models";
    public const string SupportedJobTypes = "supported_job_types";
    /// <summary>The job a worker runs, as <see cref="SleapRtc.JobProgress"/> in snake_case (our extension).</summary>
    public const string Job = "job";
    /// <summary>The machine a worker runs on (host name): the workers of one machine's GPUs share it (our extension, issue 12).</summary>
    public const string MachineId = "machine_id";
    /// <summary>True when the worker was started with a data root and accepts worker_package_path (our extension, issue 12).</summary>
    public const string DataRoot = "data_root";

    public const string Platform = "platform";
    public const string UserId = "user_id";

    /// <summary>Names other workers advertise their readable name under, in order of preference.</summary>
    public static readonly IReadOnlyList<string> WorkerNameSpellings = new[] { WorkerName, "_worker_name", "name" };
}

/// <summary>
/// A worker's metadata properties read into typed values, leniently: whatever a classic or foreign worker sends,
/// a value of the wrong shape reads as absent (null) rather than failing discovery or the monitor.
/// </summary>
public sealed class WorkerAdvertisement
{
    public string? Status { get; private set; }
    public string? GpuModel { get; private set; }
    /// <summary>Non-negative whole megabytes; null when absent or not a number.</summary>
    public long? GpuMemoryMB { get; private set; }
    public string? CudaVersion { get; private set; }
    public string? Hostname { get; private set; }
    public string? SleapVersion { get; private set; }
    public string? WorkerName { get; private set; }
    /// <summary>The <c>job</c> property as sent (an object, or a JSON string from some workers).</summary>
    public JsonNode? Job { get; private set; }

    /// <summary>Reads the <c>properties</c> object of a metadata document (null or a non-object reads as empty).</summary>
    public static WorkerAdvertisement FromMetadata(JsonObject? metadata) =>
        Read(metadata is not null && metadata.TryGetPropertyValue(PeerMetadataKeys.Properties, out var p) ? p as JsonObject : null);

    /// <summary>Reads a <c>properties</c> object.</summary>
    public static WorkerAdvertisement Read(JsonObject? properties)
    {
        var advertisement = new WorkerAdvertisement();
        if (properties is null) return advertisement;
        advertisement.Status = Text(properties, PeerMetadataKeys.Status);
        advertisement.GpuModel = Text(properties, PeerMetadataKeys.GpuModel);
        advertisement.GpuMemoryMB = Number(properties, PeerMetadataKeys.GpuMemoryMB) is double mb && mb >= 0 && mb <= long.MaxValue ? (long)mb : null;
        advertisement.CudaVersion = Text(properties, PeerMetadataKeys.CudaVersion);
        advertisement.Hostname = Text(properties, PeerMetadataKeys.Hostname);
        advertisement.SleapVersion = Text(properties, PeerMetadataKeys.SleapVersion);
        advertisement.WorkerName = PeerMetadataKeys.WorkerNameSpellings.Select(key => Text(properties, key)).FirstOrDefault(name => name is not null);
        advertisement.Job = properties.TryGetPropertyValue(PeerMetadataKeys.Job, out var job) ? job : null;
        return advertisement;
    }

    /// <summary>Strings as they are, numbers and booleans as their JSON text; objects, arrays and null are not text.</summary>
    public static string? Text(JsonObject properties, string key)
    {
        if (!properties.TryGetPropertyValue(key, out var node) || node is not JsonValue value) return null;
        return value.GetValueKind() switch
        {
            JsonValueKind.String => value.GetValue<string>(),
            JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => value.ToJsonString(),
            _ => null,
        };
    }

    /// <summary>A finite number, or a string holding one; null otherwise.</summary>
    public static double? Number(JsonObject properties, string key)
    {
        if (!properties.TryGetPropertyValue(key, out var node) || node is not JsonValue value) return null;
        var text = value.GetValueKind() switch
        {
            JsonValueKind.Number => value.ToJsonString(),
            JsonValueKind.String => value.GetValue<string>(),
            _ => null,
        };
        return text is not null && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && double.IsFinite(number)
            ? number
            : null;
    }
}
