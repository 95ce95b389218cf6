//! The control plane's REST routes (`bedrock-agentcore-control`'s paths and
//! shapes) and each gateway's MCP endpoint, `/gateways/{gatewayId}/mcp`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::ControlPlane;
use crate::error::ControlError;
use crate::gateways::{GatewayInput, TargetInput};
use crate::policies::{PolicyEngineInput, PolicyInput};
use crate::resources::{GatewayResource, PolicyEngineResource, PolicyResource, TargetResource};
use corral_api::pagination::{PageQuery, page};

type ApiResult = Result<Response, ControlError>;

/// The gateway, target, policy-engine and policy routes, and the gateways'
/// MCP endpoints.
pub fn router(plane: Arc<ControlPlane>) -> Router {
    Router::new()
        .route("/gateways/", post(create_gateway).get(list_gateways))
        .route(
            "/gateways/{gateway}/",
            get(get_gateway).put(update_gateway).delete(delete_gateway),
        )
        .route(
            "/gateways/{gateway}/targets/",
            post(create_target).get(list_targets),
        )
        .route(
            "/gateways/{gateway}/targets/{target}/",
            get(get_target).put(update_target).delete(delete_target),
        )
        .route(
            "/gateways/{gateway}/synchronizeTargets",
            put(synchronize_targets),
        )
        .route("/gateways/{gateway}/mcp", any(mcp))
        .route(
            "/policy-engines",
            post(create_policy_engine).get(list_policy_engines),
        )
        .route(
            "/policy-engines/{engine}",
            get(get_policy_engine)
                .patch(update_policy_engine)
                .delete(delete_policy_engine),
        )
        .route(
            "/policy-engines/{engine}/policies",
            post(create_policy).get(list_policies),
        )
        .route(
            "/policy-engines/{engine}/policies/{policy}",
            get(get_policy).patch(update_policy).delete(delete_policy),
        )
        .with_state(plane)
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ControlError> {
    corral_api::parse_json(body)
        .map_err(|e| ControlError::Validation(format!("could not parse request body: {e}")))
}

fn reply(status: StatusCode, value: Value) -> ApiResult {
    Ok((status, axum::Json(value)).into_response())
}

fn paged<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    query: &PageQuery,
    listing: &str,
    max: u32,
) -> Result<(Vec<T>, Option<String>), ControlError> {
    page(items, key, query, listing, max).map_err(|e| ControlError::Validation(e.to_string()))
}

/// The URL a gateway's MCP endpoint has, as the caller reached this server.
fn gateway_url(headers: &HeaderMap, gateway_id: &str) -> Value {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match header("x-forwarded-host").or_else(|| header("host")) {
        Some(host) => {
            let scheme = header("x-forwarded-proto").unwrap_or("http");
            json!(format!("{scheme}://{host}/gateways/{gateway_id}/mcp"))
        }
        None => Value::Null,
    }
}

fn gateway_json(plane: &ControlPlane, g: &GatewayResource, headers: &HeaderMap) -> Value {
    let status = plane.gateway_status(&g.gateway_id);
    let reasons: Vec<&str> = match status {
        "FAILED" => vec![
            "the gateway could not be started; see the server log, then fix it with UpdateGateway or UpdateGatewayTarget",
        ],
        _ => Vec::new(),
    };
    json!({
        "gatewayArn": g.gateway_arn,
        "gatewayId": g.gateway_id,
        "gatewayUrl": gateway_url(headers, &g.gateway_id),
        "createdAt": g.created_at,
        "updatedAt": g.updated_at,
        "status": status,
        "statusReasons": reasons,
        "name": g.name,
        "description": g.description,
        "roleArn": g.role_arn,
        "protocolType": g.protocol_type,
        "protocolConfiguration": g.protocol_configuration,
        "authorizerType": g.authorizer_type,
        "authorizerConfiguration": g.authorizer_configuration,
        "policyEngineConfiguration": g.policy_engine_configuration,
    })
}

fn target_type(t: &TargetResource) -> Option<&'static str> {
    let mcp = t.target_configuration.get("mcp")?;
    [
        ("openApiSchema", "OPEN_API_SCHEMA"),
        ("smithyModel", "SMITHY_MODEL"),
        ("lambda", "LAMBDA"),
        ("mcpServer", "MCP_SERVER"),
    ]
    .into_iter()
    .find_map(|(key, kind)| mcp.get(key).map(|_| kind))
}

fn target_json(plane: &ControlPlane, g: &GatewayResource, t: &TargetResource) -> Value {
    let (status, reasons) = plane.target_status(&g.gateway_id, &t.name);
    json!({
        "gatewayArn": g.gateway_arn,
        "targetId": t.target_id,
        "createdAt": t.created_at,
        "updatedAt": t.updated_at,
        "status": status,
        "statusReasons": reasons,
        "name": t.name,
        "description": t.description,
        "targetConfiguration": t.target_configuration,
        "credentialProviderConfigurations": t.credential_provider_configurations,
        "lastSynchronizedAt": t.last_synchronized_at,
        "protocolType": "MCP",
    })
}

fn engine_json(e: &PolicyEngineResource) -> Value {
    json!({
        "policyEngineId": e.policy_engine_id,
        "name": e.name,
        "createdAt": e.created_at,
        "updatedAt": e.updated_at,
        "policyEngineArn": e.policy_engine_arn,
        "status": "ACTIVE",
        "description": e.description,
        "statusReasons": [],
    })
}

fn policy_json(p: &PolicyResource) -> Value {
    json!({
        "policyId": p.policy_id,
        "name": p.name,
        "policyEngineId": p.policy_engine_id,
        "createdAt": p.created_at,
        "updatedAt": p.updated_at,
        "policyArn": p.policy_arn,
        "status": "ACTIVE",
        "enforcementMode": p.enforcement_mode,
        "definition": { "cedar": { "statement": p.statement } },
        "description": p.description,
        "statusReasons": [],
    })
}

async fn create_gateway(
    State(plane): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let gateway = plane.create_gateway(parse::<GatewayInput>(&body)?).await?;
    reply(
        StatusCode::ACCEPTED,
        gateway_json(&plane, &gateway, &headers),
    )
}

async fn list_gateways(
    State(plane): State<Arc<ControlPlane>>,
    Query(query): Query<PageQuery>,
) -> ApiResult {
    let (gateways, next) = paged(
        plane.list_gateways().await,
        |g| g.gateway_id.clone(),
        &query,
        "gateways",
        1000,
    )?;
    let items: Vec<Value> = gateways
        .iter()
        .map(|g| {
            json!({
                "gatewayId": g.gateway_id,
                "name": g.name,
                "status": plane.gateway_status(&g.gateway_id),
                "description": g.description,
                "createdAt": g.created_at,
                "updatedAt": g.updated_at,
                "authorizerType": g.authorizer_type,
                "protocolType": g.protocol_type,
            })
        })
        .collect();
    reply(StatusCode::OK, json!({ "items": items, "nextToken": next }))
}

async fn get_gateway(
    State(plane): State<Arc<ControlPlane>>,
    Path(gateway): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let gateway = plane.get_gateway(&gateway).await?;
    reply(StatusCode::OK, gateway_json(&plane, &gateway, &headers))
}

async fn update_gateway(
    State(plane): State<Arc<ControlPlane>>,
    Path(gateway): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let gateway = plane
        .update_gateway(&gateway, parse::<GatewayInput>(&body)?)
        .await?;
    reply(
        StatusCode::ACCEPTED,
        gateway_json(&plane, &gateway, &headers),
    )
}

async fn delete_gateway(
    State(plane): State<Arc<ControlPlane>>,
    Path(gateway): Path<String>,
) -> ApiResult {
    let gateway = plane.delete_gateway(&gateway).await?;
    reply(
        StatusCode::ACCEPTED,
        json!({ "gatewayId": gateway.gateway_id, "status": "DELETING" }),
    )
}

async fn create_target(
    State(plane): State<Arc<ControlPlane>>,
    Path(gateway): Path<String>,
    body: Bytes,
) -> ApiResult {
    let (gateway, target) = plane
        .create_target(&gateway, parse::<TargetInput>(&body)?)
        .await?;
    reply(StatusCode::ACCEPTED, target_json(&plane, &gateway, &target))
}

async fn list_targets(
    State(plane): State<Arc<ControlPlane>>,
    Path(gateway): Path<String>,
    Query(query): Query<PageQuery>,
) -> ApiResult {
    let gateway = plane.get_gateway(&gateway).await?;
    let targets: Vec<&TargetResource> = gateway.targets.values().collect();
    let (targets, next) = paged(targets, |t| t.target_id.clone(), &query, "targets", 1000)?;
    let items: Vec<Value> = targets
        .iter()
        .map(|t| {
            json!({
                "targetId": t.target_id,
                "name": t.name,
                "status": plane.target_status(&gateway.gateway_id, &t.name).0,
                "description": t.description,
                "createdAt": t.created_at,
                "updatedAt": t.updated_at,
                "lastSynchronizedAt": t.last_synchronized_at,
                "targetType": target_type(t),
            })
        })
        .collect();
    reply(StatusCode::OK, json!({ "items": items, "nextToken": next }))
}

async fn get_target(
    State(plane): State<Arc<ControlPlane>>,
    Path((gateway, target)): Path<(String, String)>,
) -> ApiResult {
    let (gateway, target) = plane.get_target(&gateway, &target).await?;
    reply(StatusCode::OK, target_json(&plane, &gateway, &target))
}

async fn update_target(
    State(plane): State<Arc<ControlPlane>>,
    Path((gateway, target)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let (gateway, target) = plane
        .update_target(&gateway, &target, parse::<TargetInput>(&body)?)
        .await?;
    reply(StatusCode::ACCEPTED, target_json(&plane, &gateway, &target))
}

async fn delete_target(
    State(plane): State<Arc<ControlPlane>>,
    Path((gateway, target)): Path<(String, String)>,
) -> ApiResult {
    let (gateway, target) = plane.delete_target(&gateway, &target).await?;
    reply(
        StatusCode::ACCEPTED,
        json!({ "gatewayArn": gateway.gateway_arn, "targetId": target.target_id, "status": "DELETING" }),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SynchronizeInput {
    #[serde(default)]
    target_id_list: Vec<String>,
}

async fn synchronize_targets(
    State(plane): State<Arc<ControlPlane>>,
    Path(gateway): Path<String>,
    body: Bytes,
) -> ApiResult {
    let input: SynchronizeInput = parse(&body)?;
    let (gateway, targets) = plane
        .synchronize_targets(&gateway, &input.target_id_list)
        .await?;
    let targets: Vec<Value> = targets
        .iter()
        .map(|t| target_json(&plane, &gateway, t))
        .collect();
    reply(StatusCode::ACCEPTED, json!({ "targets": targets }))
}

/// A gateway's MCP endpoint: the request goes to that gateway's MCP router.
async fn mcp(
    State(plane): State<Arc<ControlPlane>>,
    Path(gateway): Path<String>,
    mut request: Request,
) -> Response {
    let Some(router) = plane.mcp_router(&gateway) else {
        return ControlError::NotFound(format!("gateway {gateway} not found")).into_response();
    };
    let path = match request.uri().query() {
        Some(query) => format!("/mcp?{query}"),
        None => "/mcp".to_string(),
    };
    if let Ok(uri) = path.parse::<Uri>() {
        *request.uri_mut() = uri;
    }
    match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

async fn create_policy_engine(State(plane): State<Arc<ControlPlane>>, body: Bytes) -> ApiResult {
    let engine = plane
        .create_policy_engine(parse::<PolicyEngineInput>(&body)?)
        .await?;
    reply(StatusCode::ACCEPTED, engine_json(&engine))
}

async fn list_policy_engines(
    State(plane): State<Arc<ControlPlane>>,
    Query(query): Query<PageQuery>,
) -> ApiResult {
    let (engines, next) = paged(
        plane.list_policy_engines().await,
        |e| e.policy_engine_id.clone(),
        &query,
        "policy-engines",
        100,
    )?;
    let engines: Vec<Value> = engines.iter().map(engine_json).collect();
    reply(
        StatusCode::OK,
        json!({ "policyEngines": engines, "nextToken": next }),
    )
}

async fn get_policy_engine(
    State(plane): State<Arc<ControlPlane>>,
    Path(engine): Path<String>,
) -> ApiResult {
    reply(
        StatusCode::OK,
        engine_json(&plane.get_policy_engine(&engine).await?),
    )
}

async fn update_policy_engine(
    State(plane): State<Arc<ControlPlane>>,
    Path(engine): Path<String>,
    body: Bytes,
) -> ApiResult {
    let engine = plane
        .update_policy_engine(&engine, parse::<PolicyEngineInput>(&body)?)
        .await?;
    reply(StatusCode::ACCEPTED, engine_json(&engine))
}

async fn delete_policy_engine(
    State(plane): State<Arc<ControlPlane>>,
    Path(engine): Path<String>,
) -> ApiResult {
    let engine = plane.delete_policy_engine(&engine).await?;
    let mut out = engine_json(&engine);
    out["status"] = json!("DELETING");
    reply(StatusCode::ACCEPTED, out)
}

async fn create_policy(
    State(plane): State<Arc<ControlPlane>>,
    Path(engine): Path<String>,
    body: Bytes,
) -> ApiResult {
    let policy = plane
        .create_policy(&engine, parse::<PolicyInput>(&body)?)
        .await?;
    reply(StatusCode::ACCEPTED, policy_json(&policy))
}

async fn list_policies(
    State(plane): State<Arc<ControlPlane>>,
    Path(engine): Path<String>,
    Query(query): Query<PageQuery>,
) -> ApiResult {
    let (policies, next) = paged(
        plane.list_policies(&engine).await?,
        |p| p.policy_id.clone(),
        &query,
        "policies",
        100,
    )?;
    let policies: Vec<Value> = policies.iter().map(policy_json).collect();
    reply(
        StatusCode::OK,
        json!({ "policies": policies, "nextToken": next }),
    )
}

async fn get_policy(
    State(plane): State<Arc<ControlPlane>>,
    Path((engine, policy)): Path<(String, String)>,
) -> ApiResult {
    let policy = plane.get_policy(&engine, &policy).await?;
    reply(StatusCode::OK, policy_json(&policy))
}

async fn update_policy(
    State(plane): State<Arc<ControlPlane>>,
    Path((engine, policy)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let policy = plane
        .update_policy(&engine, &policy, parse::<PolicyInput>(&body)?)
        .await?;
    reply(StatusCode::ACCEPTED, policy_json(&policy))
}

async fn delete_policy(
    State(plane): State<Arc<ControlPlane>>,
    Path((engine, policy)): Path<(String, String)>,
) -> ApiResult {
    let policy = plane.delete_policy(&engine, &policy).await?;
    let mut out = policy_json(&policy);
    out["status"] = json!("DELETING");
    reply(StatusCode::ACCEPTED, out)
}
