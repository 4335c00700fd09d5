/**
 * A schedule (docs/product-rules.md "Sync schedule"): manual only, every 4 hours, daily at a time, or weekly on a day
 * at a time, the time in an IANA time zone (the browser's own by default).
 */
import { ComboBox, LabeledInput, LabeledSelect } from "@itwin/itwinui-react";
import { useId, useMemo } from "react";
import { FieldStatus } from "./components";
import { DAYS_OF_WEEK, type ScheduleInput, type ScheduleType } from "./types";

const TYPE_OPTIONS: { value: ScheduleType; label: string }[] = [
  { value: "manual", label: "Manual only" },
  { value: "every4Hours", label: "Every 4 hours (00:00, 04:00, … UTC)" },
  { value: "daily", label: "Daily" },
  { value: "weekly", label: "Weekly" },
];

/** The browser's IANA time zone, e.g. "Europe/Berlin". */
export const browserTimeZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

/** IANA time zones the browser knows (UTC included). */
function timeZones(): string[] {
  const zones = (Intl as { supportedValuesOf?: (key: string) => string[] }).supportedValuesOf?.("timeZone") ?? [];
  return zones.includes("UTC") ? zones : ["UTC", ...zones];
}

/** The body `PUT /connections/{id}/schedule` takes for `s` (only the fields of its type). */
export function scheduleBody(s: ScheduleInput): ScheduleInput {
  switch (s.type) {
    case "daily":
      return { type: "daily", time: s.time, timeZone: s.timeZone };
    case "weekly":
      return { type: "weekly", dayOfWeek: s.dayOfWeek, time: s.time, timeZone: s.timeZone };
    default:
      return { type: s.type };
  }
}

/** A schedule to start editing from: the given one, with a time and zone filled in for daily and weekly. */
export function editableSchedule(s: Partial<ScheduleInput> | undefined): ScheduleInput {
  return {
    type: s?.type ?? "manual",
    time: s?.time ?? "02:00",
    timeZone: s?.timeZone ?? browserTimeZone(),
    dayOfWeek: s?.dayOfWeek ?? "Sunday",
  };
}

export function ScheduleFields({
  value,
  onChange,
  error,
}: {
  value: ScheduleInput;
  onChange: (s: ScheduleInput) => void;
  /** The API's words about the schedule (InvalidSchedule), shown under it. */
  error?: string;
}) {
  const zones = useMemo(() => timeZones().map((z) => ({ value: z, label: z })), []);
  const zoneLabelId = useId();
  const timed = value.type === "daily" || value.type === "weekly";
  return (
    <fieldset className="portal-fieldset">
      <legend className="portal-legend">Schedule</legend>
      <LabeledSelect<ScheduleType>
        label="Synchronize"
        native
        value={value.type}
        options={TYPE_OPTIONS}
        onChange={(type: string) => onChange({ ...value, type: type as ScheduleType })}
      />
      {value.type === "weekly" ? (
        <LabeledSelect<string>
          label="Day"
          native
          value={value.dayOfWeek}
          options={DAYS_OF_WEEK.map((d) => ({ value: d, label: d }))}
          onChange={(dayOfWeek: string) => onChange({ ...value, dayOfWeek })}
        />
      ) : null}
      {timed ? (
        <>
          <LabeledInput
            label="Time (wall clock in the time zone)"
            type="time"
            value={value.time}
            required
            onChange={(e) => onChange({ ...value, time: e.target.value })}
          />
          <div className="portal-field">
            <label id={zoneLabelId} className="portal-label" htmlFor={`${zoneLabelId}-input`}>
              Time zone
            </label>
            <ComboBox<string>
              options={zones}
              value={value.timeZone}
              onChange={(timeZone: string) => onChange({ ...value, timeZone })}
              inputProps={{ id: `${zoneLabelId}-input`, "aria-labelledby": zoneLabelId }}
              enableVirtualization
            />
          </div>
        </>
      ) : null}
      <FieldStatus>{error}</FieldStatus>
    </fieldset>
  );
}
