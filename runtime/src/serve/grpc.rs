//! The protocol's gRPC service (tonic), `inference.GRPCInferenceService` of
//! `proto/inference.proto`. Tensors arrive in `raw_input_contents` (what Triton's clients send)
//! or in `contents`; they leave in `raw_output_contents`, as Triton answers. A message over
//! `--max-request-size` is refused by tonic before it is decoded, with OUT_OF_RANGE.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use prism_runtime::protocol::proto::model_infer_response::InferOutputTensor;
use prism_runtime::protocol::proto::*;
use prism_runtime::protocol::{Fault, bytes_of, decode_grpc};

use super::inference::Server;
use super::service::grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer};

/// The service on `server`, with its message size limit.
pub fn service(server: Arc<Server>) -> GrpcInferenceServiceServer<Grpc> {
    let limit = server.max_request;
    GrpcInferenceServiceServer::new(Grpc(server)).max_decoding_message_size(limit).max_encoding_message_size(usize::MAX)
}

pub struct Grpc(Arc<Server>);

fn status(fault: Fault) -> Status {
    let message = fault.to_string();
    match fault {
        Fault::Invalid(_) => Status::invalid_argument(message),
        Fault::NotFound(_) => Status::not_found(message),
        Fault::Busy(_) | Fault::TooLarge(_) => Status::resource_exhausted(message),
        Fault::Timeout(_) => Status::deadline_exceeded(message),
        Fault::Stopping => Status::unavailable(message),
        Fault::Internal(_) => Status::internal(message),
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for Grpc {
    async fn server_live(&self, _: Request<ServerLiveRequest>) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(&self, _: Request<ServerReadyRequest>) -> Result<Response<ServerReadyResponse>, Status> {
        Ok(Response::new(ServerReadyResponse { ready: true }))
    }

    async fn model_ready(&self, request: Request<ModelReadyRequest>) -> Result<Response<ModelReadyResponse>, Status> {
        let request = request.into_inner();
        let ready = self.0.model(&request.name, &request.version).is_ok();
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        Ok(Response::new(ServerMetadataResponse {
            name: "prism".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: vec!["model_configuration".into()],
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        let request = request.into_inner();
        let model = self.0.model(&request.name, &request.version).map_err(status)?;
        Ok(Response::new(model.metadata(self.0.versions(&request.name))))
    }

    async fn model_config(
        &self,
        request: Request<ModelConfigRequest>,
    ) -> Result<Response<ModelConfigResponse>, Status> {
        let request = request.into_inner();
        let model = self.0.model(&request.name, &request.version).map_err(status)?;
        Ok(Response::new(ModelConfigResponse { config: Some(model.config.clone()) }))
    }

    async fn model_infer(&self, request: Request<ModelInferRequest>) -> Result<Response<ModelInferResponse>, Status> {
        let request = request.into_inner();
        let (name, version) = (request.model_name.clone(), request.model_version.clone());
        let decoded = match decode_grpc(request) {
            Ok(decoded) => decoded,
            Err(e) => return Err(status(self.0.refuse("grpc", &name, e))),
        };
        let response = self.0.infer("grpc", &name, &version, decoded).await.map_err(status)?;
        let outputs = response
            .outputs
            .iter()
            .map(|(name, value)| InferOutputTensor {
                name: name.clone(),
                datatype: "FP32".into(),
                shape: value.shape().iter().map(|&d| d as i64).collect(),
                ..Default::default()
            })
            .collect();
        Ok(Response::new(ModelInferResponse {
            model_name: response.model_name,
            model_version: response.model_version,
            id: response.id,
            parameters: Default::default(),
            outputs,
            raw_output_contents: response.outputs.iter().map(|(_, value)| bytes_of(value)).collect(),
        }))
    }
}
