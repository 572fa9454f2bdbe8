// What the audit job and the merge of its shards share: the format of a finished batch's
// records in the batch files (every double round-trips; NaN is null).
#pragma once

#include <nlohmann/json.hpp>

#include "sightline/audit.hpp"

namespace sightline::detail {

nlohmann::json audit_record_to_json(const AuditRecord& record);
AuditRecord audit_record_from_json(const nlohmann::json& j);

}  // namespace sightline::detail
