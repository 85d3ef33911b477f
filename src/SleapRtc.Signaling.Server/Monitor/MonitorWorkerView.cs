using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SleapRtc.Protocol.Signaling;

namespace SleapRtc.Signaling.Monitor;

/// <summary>
/// One worker as the monitor shows it: the classic metadata properties flattened into the fields of the state
/// document, plus the job the worker publishes in <c>properties.job</c> normalised to one shape (see README.md).
/// Keeps its JSON pieces so that successive views can be compared cheaply to decide which events to send.
/// </summary>
internal sealed class MonitorWorkerView
{
    /// <summary>Loss points kept per job: enough for a sparkline, small enough for 2 updates a second.</summary>
    internal const int MaxLossHistoryPoints = 200;

    /// <summary>The property per-GPU workers of one host share (the worker side names it PeerMetadataKeys.MachineId).</summary>
    internal const string MachineIdKey = "machine_id";

    private MonitorWorkerView(string peerId, string status, string? machineId, string jobJson, string json)
    {
        MachineId = machineId;
        PeerId = peerId;
        Status = status;
        JobJson = jobJson;
        Json = json;
    }

    public string PeerId { get; }
    public string Status { get; }
    /// <summary>The host several GPU workers share (<c>properties.machine_id</c>), null when not advertised.</summary>
    public string? MachineId { get; }
    /// <summary>The normalised job object, or <c>null</c> as JSON text.</summary>
    public string JobJson { get; }
    /// <summary>The whole worker object as sent in the state document and in events.</summary>
    public string Json { get; }

    /// <summary>The monitor view of a peer, or null when the peer is neither a worker nor an inference space's worker
    /// (clients are not shown).</summary>
    public static MonitorWorkerView? FromPeer(MonitorPeer peer)
    {
        if (peer.Role is not ("worker" or SpaceMetadata.Role)) return null;

        var properties = peer.Metadata.ValueKind == JsonValueKind.Object
            && peer.Metadata.TryGetProperty(PeerMetadataKeys.Properties, out var p) && p.ValueKind == JsonValueKind.Object
            ? p : default;
        var advertised = WorkerAdvertisement.Read(properties.ValueKind == JsonValueKind.Object ? JsonObject.Create(properties) : null);
        var status = advertised.Status ?? "unknown";
        var jobJson = NormaliseJob(properties);
        var machineId = properties.ValueKind == JsonValueKind.Object && properties.TryGetProperty(MachineIdKey, out var m)
            && m.ValueKind == JsonValueKind.String ? m.GetString() : null;

        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("peer_id", peer.PeerId);
            WriteStringOrNull(writer, "name", advertised.WorkerName);
            writer.WriteString("role", peer.Role);
            writer.WriteString(PeerMetadataKeys.Status, status);
            WriteStringOrNull(writer, PeerMetadataKeys.GpuModel, advertised.GpuModel);
            if (advertised.GpuMemoryMB is long mb) writer.WriteNumber(PeerMetadataKeys.GpuMemoryMB, mb); else writer.WriteNull(PeerMetadataKeys.GpuMemoryMB);
            WriteStringOrNull(writer, PeerMetadataKeys.CudaVersion, advertised.CudaVersion);
            WriteStringOrNull(writer, PeerMetadataKeys.Hostname, advertised.Hostname);
            WriteStringOrNull(writer, MachineIdKey, machineId);
            WriteStringOrNull(writer, PeerMetadataKeys.SleapVersion, advertised.SleapVersion);
            writer.WriteStartArray(PeerMetadataKeys.Tags);
            if (peer.Metadata.ValueKind == JsonValueKind.Object && peer.Metadata.TryGetProperty(PeerMetadataKeys.Tags, out var tags) && tags.ValueKind == JsonValueKind.Array)
            {
                foreach (var tag in tags.EnumerateArray())
                {
                    if (tag.ValueKind == JsonValueKind.String) writer.WriteStringValue(tag.GetString());
                }
            }
            writer.WriteEndArray();
            writer.WritePropertyName(PeerMetadataKeys.Job);
            writer.WriteRawValue(jobJson, skipInputValidation: true);
            WriteSpace(writer, peer.Role, properties);
            writer.WriteString("connected_at", peer.ConnectedAt.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture));
            // Everything else the worker advertised, for scripts; the job is already above in its normalised form.
            writer.WriteStartObject(PeerMetadataKeys.Properties);
            if (properties.ValueKind == JsonValueKind.Object)
            {
                foreach (var property in properties.EnumerateObject())
                {
                    if (property.NameEquals(PeerMetadataKeys.Job)) continue;
                    property.WriteTo(writer);
                }
            }
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        return new MonitorWorkerView(peer.PeerId, status, machineId, jobJson, Encoding.UTF8.GetString(buffer.WrittenSpan));
    }

    /// <summary>
    /// Turns <c>properties.job</c> into the documented shape: <see cref="SleapRtc.JobProgress"/> in snake_case, as
    /// our worker publishes it. PascalCase or camelCase names, <c>package</c> for <c>package_name</c>, and the
    /// object sent as a JSON string are accepted too, for workers written differently.
    /// </summary>
    private static string NormaliseJob(JsonElement properties)
    {
        if (properties.ValueKind != JsonValueKind.Object || !properties.TryGetProperty(PeerMetadataKeys.Job, out var job)) return "null";
        JsonDocument? parsed = null;
        try
        {
            if (job.ValueKind == JsonValueKind.String)
            {
                try { parsed = JsonDocument.Parse(job.GetString() ?? ""); }
                catch (JsonException) { return "null"; }
                job = parsed.RootElement;
            }
            if (job.ValueKind != JsonValueKind.Object) return "null";

            var fields = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            foreach (var property in job.EnumerateObject())
            {
                fields[CanonicalKey(property.Name)] = property.Value;
            }

            var buffer = new ArrayBufferWriter<byte>(512);
            using (var writer = new Utf8JsonWriter(buffer))
            {
                writer.WriteStartObject();
                WriteStringOrNull(writer, "job_id", TextOf(fields, "jobid"));
                WriteStringOrNull(writer, "package_name", TextOf(fields, "packagename") ?? TextOf(fields, "package"));
                WriteStringOrNull(writer, "phase", TextOf(fields, "phase"));
                WriteNumberOrNull(writer, "config_index", NumberOf(fields, "configindex"));
                WriteNumberOrNull(writer, "config_count", NumberOf(fields, "configcount"));
                WriteStringOrNull(writer, "config_name", TextOf(fields, "configname"));
                WriteNumberOrNull(writer, "epoch", NumberOf(fields, "epoch"));
                WriteNumberOrNull(writer, "epoch_count", NumberOf(fields, "epochcount") ?? NumberOf(fields, "epochs"));
                WriteNumberOrNull(writer, "loss", NumberOf(fields, "loss"));
                WriteNumberOrNull(writer, "val_loss", NumberOf(fields, "valloss"));
                writer.WriteStartArray("loss_history");
                if (fields.TryGetValue("losshistory", out var history) && history.ValueKind == JsonValueKind.Array)
                {
                    var points = history.EnumerateArray().Select(NumberValue).Where(v => v is not null).Select(v => v!.Value).ToList();
                    foreach (var point in points.Skip(Math.Max(0, points.Count - MaxLossHistoryPoints))) writer.WriteNumberValue(point);
                }
                writer.WriteEndArray();
                WriteStringOrNull(writer, "started_at", TextOf(fields, "startedat"));
                writer.WriteEndObject();
            }
            return Encoding.UTF8.GetString(buffer.WrittenSpan);
        }
        finally
        {
            parsed?.Dispose();
        }
    }

    /// <summary>
    /// <c>"space": {"name", "state", "queue_length"}</c> for the worker of an inference space (role "space"), what the
    /// page's submit panel keys its space panels by; <c>null</c> for a training worker.
    /// </summary>
    private static void WriteSpace(Utf8JsonWriter writer, string role, JsonElement properties)
    {
        var name = properties.ValueKind == JsonValueKind.Object && properties.TryGetProperty(SpaceMetadata.NameProperty, out var n) ? ScalarText(n) : null;
        if (role != SpaceMetadata.Role || string.IsNullOrEmpty(name))
        {
            writer.WriteNull(SpaceMetadata.NameProperty);
            return;
        }
        var fields = properties.EnumerateObject().ToDictionary(p => p.Name, p => p.Value, StringComparer.Ordinal);
        writer.WriteStartObject(SpaceMetadata.NameProperty);
        writer.WriteString("name", name);
        writer.WriteString("state", TextOf(fields, SpaceMetadata.StateProperty) ?? SpaceMetadata.Ready);
        writer.WriteNumber("queue_length", NumberOf(fields, SpaceMetadata.QueueProperty) ?? 0);
        writer.WriteEndObject();
    }

    private static string CanonicalKey(string name) => name.Replace("_", "", StringComparison.Ordinal).ToLowerInvariant();

    private static string? TextOf(Dictionary<string, JsonElement> fields, string key) =>
        fields.TryGetValue(key, out var value) ? ScalarText(value) : null;

    private static double? NumberOf(Dictionary<string, JsonElement> fields, string key) =>
        fields.TryGetValue(key, out var value) ? NumberValue(value) : null;

    /// <summary>Strings as they are, numbers and booleans as their JSON text; objects and arrays are not text.</summary>
    private static string? ScalarText(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString(),
        JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => value.GetRawText(),
        _ => null,
    };

    private static double? NumberValue(JsonElement value)
    {
        double number;
        if (value.ValueKind == JsonValueKind.Number) number = value.GetDouble();
        else if (value.ValueKind != JsonValueKind.String
            || !double.TryParse(value.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out number)) return null;
        return double.IsFinite(number) ? number : null;
    }

    private static void WriteStringOrNull(Utf8JsonWriter writer, string name, string? value)
    {
        if (value is null) writer.WriteNull(name); else writer.WriteString(name, value);
    }

    private static void WriteNumberOrNull(Utf8JsonWriter writer, string name, double? value)
    {
        if (value is double number) writer.WriteNumber(name, number); else writer.WriteNull(name);
    }
}
